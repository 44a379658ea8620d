# The article's locustfile (step 4), unchanged. Run it with aiload:
#   aiload -f examples/locust/load_testing.py --headless -u 50 -r 10 -t 60s --host=http://0.0.0.0:5000/
from locust import HttpUser, task, between


class WebsiteUser(HttpUser):
    wait_time = between(5, 15)

    @task
    def index(self):
        self.client.get("/")
