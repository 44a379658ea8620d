"""A task that never yields: aiload must still stop on time and name it."""
from locust import HttpUser, constant, task


class Busy(HttpUser):
    wait_time = constant(0.05)

    @task
    def spin_forever(self):
        self.client.get("/")
        n = 0
        while True:  # no request, no sleep: holds the only thread
            n += 1
