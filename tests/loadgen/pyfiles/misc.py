"""Pieces of the API the comparison files leave out: weights, a wait_time
that is a plain function or a lambda, a host on the class, tasks as a plain
list, tags, imports from locust.clients / locust.runners, quitting from a
task through environment.runner."""
import time

from locust import events
from locust import HttpUser, User, between, run_single_user, tag, task  # noqa: F401
from locust.clients import HttpSession  # noqa: F401
from locust.exception import StopUser
from locust.runners import STATE_RUNNING, STATE_SPAWNING, LocalRunner, MasterRunner, WorkerRunner  # noqa: F401

HOST = None  # set by the test through -H


def think(user):
    return 0.01


def hello(user):
    user.client.get("/", name="list-task")


class Weighted(HttpUser):
    weight = 3
    wait_time = think
    tasks = [hello]

    @tag("a")
    @task(2)
    def tagged_a(self):
        self.client.get("/item?id=a", name="tag-a")

    @tag("b")
    @task
    def tagged_b(self):
        self.client.get("/item?id=b", name="tag-b")


class Lambda(HttpUser):
    weight = 1
    wait_time = lambda self: 0.01  # noqa: E731

    @task
    def state(self):
        st = self.environment.runner.state
        self.client.get("/item?id=" + st, name="state-" + ("ok" if st in (STATE_RUNNING, STATE_SPAWNING) else st))


class Quitter(HttpUser):
    """Quits the whole test from its task after --quit-after seconds (0: never)."""
    fixed_count = 1
    wait_time = between(0.05, 0.1)

    @task
    def maybe_quit(self):
        env = self.environment
        after = getattr(env.parsed_options, "quit_after", 0)
        self.client.get("/", name="quitter")
        if after and env.runner.stats.total.num_requests and time.time() - env.runner.start_time > after:
            assert not isinstance(env.runner, (MasterRunner, WorkerRunner))
            env.runner.quit()


@events.init_command_line_parser.add_listener
def _(parser):
    parser.add_argument("--quit-after", type=float, default=0)


seen = {"success": 0, "failure": 0}


@events.request_success.add_listener
def _ok(request_type, name, response_time, response_length, **kw):
    seen["success"] += 1


@events.test_stop.add_listener
def _report(environment, **kw):
    print(f"deprecated request_success fired {seen['success']} times", flush=True)


class Custom(User):
    """A user without HTTP that records its own 'requests' through events.request."""
    fixed_count = 1
    wait_time = between(0.01, 0.02)

    @task
    def work(self):
        self.environment.events.request.fire(request_type="CUSTOM", name="work", response_time=1.5,
                                             response_length=10, exception=None, context={})
