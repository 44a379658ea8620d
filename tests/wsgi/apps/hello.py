"""The article's minimal Flask app (bench/wsgi uses it)."""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, World!"
