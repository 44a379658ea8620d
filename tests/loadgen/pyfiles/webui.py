"""The web UI over a Python locustfile (tests/loadgen/test_pyfile_webui.py):
two request names and a task that raises, so the Exceptions tab has a row
with a traceback that names this file."""
from locust import HttpUser, constant, task


def explode(n):
    raise ValueError(f"webui test boom {n}")


class Web(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def home(self):
        self.client.get("/", name="home")

    @task
    def item(self):
        self.client.get("/item?id=web", name="item")

    @task
    def broken(self):
        explode(1)
