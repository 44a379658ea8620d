"""A LoadTestShape: 2 users for about 2 seconds, then 4, then the shape ends the test."""
from locust import HttpUser, LoadTestShape, constant, task


class U(HttpUser):
    wait_time = constant(0.1)

    @task
    def t(self):
        self.client.get("/")


class Steps(LoadTestShape):
    def tick(self):
        t = self.get_run_time()
        if t < 2:
            return (2, 10)
        if t < 4:
            return (4, 10)
        return None
