"""FastHttpUser.rest(): JSON parsed into .js, failed asserts fail the request."""
from locust import FastHttpUser, constant, task
from locust.exception import StopUser


class R(FastHttpUser):
    wait_time = constant(0)

    @task
    def t(self):
        with self.rest("POST", "/login", json={"user": "carol"}) as r:
            token = r.js["token"]
        with self.rest("GET", "/api/items", headers={"Authorization": "Bearer " + token}) as r:
            assert len(r.js["items"]) == 3
        with self.rest("GET", "/api/items", headers={"Authorization": "Bearer " + token}, name="wrong") as r:
            assert r.js["user"] == "dave", "user is not dave"
        with self.rest("GET", "/", name="not-json"):
            pass
        raise StopUser()
