from .task import TaskSet, task, tag  # noqa: F401
from .users import HttpUser, User  # noqa: F401
