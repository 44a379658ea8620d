"""The article's I/O-bound demo: GET / waits on an upstream that answers after
2 s (the article calls https://httpbin.org/delay/2; here a local upstream, see
upstream.py, or set UPSTREAM) and returns its JSON."""
import os

import requests
from flask import Flask

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:8001/delay/2")

app = Flask(__name__)


@app.route("/")
def hello_world():
    return requests.get(UPSTREAM, timeout=30).json()


if __name__ == "__main__":
    app.run(host="0.0.0.0", threaded=True)
