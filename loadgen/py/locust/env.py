"""Environment: what a test knows about itself (events, user classes, the
runner, the stats, the parsed options)."""
from .event import Events
from .stats import RequestStats


class Environment:
    def __init__(self, *, user_classes=None, shape_class=None, tags=None, locustfile=None,
                 exclude_tags=None, events=None, host=None, reset_stats=False, stop_timeout=None,
                 catch_exceptions=True, parsed_options=None, available_user_classes=None,
                 available_shape_classes=None):
        self.runner = None
        self.web_ui = None
        self.process_exit_code = None
        self.events = events or Events()
        self.locustfile = locustfile
        self.user_classes = user_classes or []
        self.shape_class = shape_class
        self.tags = tags
        self.exclude_tags = exclude_tags
        self.stats = RequestStats()
        self.host = host
        self.reset_stats = reset_stats
        self.stop_timeout = stop_timeout
        self.catch_exceptions = catch_exceptions
        self.parsed_options = parsed_options
        self.available_user_classes = available_user_classes or {}
        self.available_shape_classes = available_shape_classes or {}
        self.worker_index = 0

    def create_local_runner(self):
        from .runners import LocalRunner

        if self.runner is not None:
            from .exception import RunnerAlreadyExistsError

            raise RunnerAlreadyExistsError(f"Environment.runner already exists ({self.runner})")
        self.runner = LocalRunner(self)
        return self.runner

    def create_web_ui(self, *args, **kwargs):
        raise NotImplementedError("aiload's web UI does not run Python locustfiles yet: use --headless")

    def create_master_runner(self, master_bind_host="*", master_bind_port=5557):
        from .runners import MasterRunner

        if self.runner is not None:
            from .exception import RunnerAlreadyExistsError

            raise RunnerAlreadyExistsError(f"Environment.runner already exists ({self.runner})")
        self.runner = MasterRunner(self, master_bind_host, master_bind_port)
        return self.runner

    def create_worker_runner(self, master_host=None, master_port=None):
        from .runners import WorkerRunner

        if self.runner is not None:
            from .exception import RunnerAlreadyExistsError

            raise RunnerAlreadyExistsError(f"Environment.runner already exists ({self.runner})")
        self.runner = WorkerRunner(self, master_host, master_port)
        return self.runner

    def assign_equal_weights(self):
        for u in self.user_classes:
            u.weight = 1
            tasks = []
            for t in u.tasks:
                if t not in tasks:
                    tasks.append(t)
            u.tasks = tasks

    def _filter_tasks_by_tags(self):
        from .user.task import filter_tasks_by_tags

        if not self.tags and not self.exclude_tags:
            return
        tags = set(self.tags) if self.tags else None
        exclude = set(self.exclude_tags) if self.exclude_tags else None
        for u in self.user_classes:
            filter_tasks_by_tags(u, tags, exclude)
