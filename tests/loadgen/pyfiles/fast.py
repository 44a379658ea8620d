"""FastHttpUser: names are the URL as given, statuses outside the valid set fail
with BadStatusCode; each user runs two rounds and stops."""
from locust import FastHttpUser, task, constant
from locust.exception import StopUser


class F(FastHttpUser):
    wait_time = constant(0)
    n = 0

    def on_start(self):
        r = self.client.post("/login", json={"user": "bob"})
        self.auth = {"Authorization": "Bearer " + r.json()["token"]}

    @task
    def t(self):
        self.client.get("/")
        self.client.get("/item?id=1")
        self.client.get("/item?id=2", name="item")
        self.client.get("/status/404")
        self.client.get("/status/500")
        self.client.get("/redirect")
        with self.client.get("/status/404", catch_response=True) as r:
            r.success()
        with self.client.get("/api/items", headers=self.auth, catch_response=True) as r:
            if len(r.json()["items"]) != 3:
                r.failure("not 3")
        with self.client.get("/api/items", name="noauth", catch_response=True) as r:
            pass
        self.client.post("/echo", json={"a": 1})
        self.n += 1
        if self.n >= 2:
            raise StopUser()
