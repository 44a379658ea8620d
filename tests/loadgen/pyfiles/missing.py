from locust import HttpUser, task
from locust import NotProvidedAnywhere


class U(HttpUser):
    @task
    def t(self):
        self.client.get("/")
