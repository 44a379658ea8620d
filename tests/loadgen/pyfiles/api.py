"""A locustfile using most of the API; every user runs a fixed number of
rounds and stops, so the request counts are the same in Locust and aiload."""
import json

from locust import HttpUser, SequentialTaskSet, TaskSet, constant, events, task
from locust.exception import StopUser

state = {"requests": 0, "test_start": 0, "test_stop": 0, "init": 0, "spawned": None}


@events.init_command_line_parser.add_listener
def add_args(parser):
    parser.add_argument("--rounds", type=int, default=1, help="rounds each ApiUser runs")
    parser.add_argument("--out-file", type=str, default="", help="where test_stop writes its JSON")


@events.init.add_listener
def on_init(environment, **kwargs):
    state["init"] += 1


@events.test_start.add_listener
def on_test_start(environment, **kwargs):
    state["test_start"] += 1


@events.request.add_listener
def on_request(request_type, name, response_time, response_length, exception, **kwargs):
    state["requests"] += 1


@events.spawning_complete.add_listener
def on_spawned(user_count, **kwargs):
    state["spawned"] = user_count


@events.test_stop.add_listener
def on_test_stop(environment, **kwargs):
    state["test_stop"] += 1
    state["rounds"] = environment.parsed_options.rounds
    state["total"] = environment.stats.total.num_requests
    if environment.parsed_options.out_file:
        with open(environment.parsed_options.out_file, "w") as f:
            json.dump(state, f)


class Flow(SequentialTaskSet):
    def on_start(self):
        r = self.client.post("/login", json={"user": "alice"})
        self.client.headers["Authorization"] = "Bearer " + r.json()["token"]

    @task
    def items(self):
        with self.client.get("/api/items", catch_response=True) as r:
            if len(r.json()["items"]) != 3:
                r.failure("expected 3 items")
            elif r.json()["user"] != "alice":
                r.failure("wrong user")

    @task
    def session_cookie(self):
        self.client.get("/api/session")

    @task
    def named(self):
        for i in range(3):
            self.client.get(f"/item?id={i}", name="/item?id=[id]")

    @task
    def variety(self):
        self.client.get("/echo", params={"a": 1, "b": "x y"})
        self.client.post("/echo", data={"k": "v"})
        self.client.put("/echo", data=b"raw")
        self.client.patch("/echo", json={"p": 1})
        self.client.delete("/echo")
        self.client.head("/")
        self.client.options("/echo")
        self.client.post("/echo", files={"f": ("a.txt", b"hello")})
        self.client.get("/echo", headers={"X-Test": "1"}, cookies={"c": "1"}, timeout=5)
        r = self.client.get("/echo", headers={"X-Test": "yes"}, name="echo-check")
        assert r.json()["x"] == "yes", r.text

    @task
    def failures(self):
        self.client.get("/status/500")
        with self.client.get("/status/404", catch_response=True) as r:
            if r.status_code == 404:
                r.success()
        with self.client.get("/", catch_response=True) as r:
            r.failure("forced failure")

    @task
    def redirects(self):
        r = self.client.get("/redirect")
        assert r.status_code == 200 and r.history, r
        self.client.get("/redirect", allow_redirects=False, name="/redirect (no follow)")

    @task
    class Inner(TaskSet):
        @task
        def once(self):
            self.client.get("/item?id=inner", name="inner")
            self.interrupt()

    @task
    def broken(self):
        self.client.get("/", name="before-exception")
        1 / 0  # an exception: counted in the Exceptions table, the user goes on

    @task
    def done(self):
        self.user.rounds += 1
        if self.user.rounds >= self.user.environment.parsed_options.rounds:
            raise StopUser()


class ApiUser(HttpUser):
    wait_time = constant(0)
    tasks = [Flow]
    rounds = 0


def module_task(user):
    user.client.get("/", name="module_task")
    user.count += 1
    if user.count >= 2:
        raise StopUser()


class Other(HttpUser):
    fixed_count = 1
    wait_time = constant(0)
    tasks = {module_task: 1}
    count = 0
