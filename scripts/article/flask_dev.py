"""Runs one of the article's Flask apps under Flask's own development server,
as the article does with app.run(): python3 flask_dev.py MODULE PORT threaded|single.
The module is imported from examples/article (the working directory)."""
import importlib
import os
import sys


def main():
    sys.path.insert(0, os.getcwd())
    module, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    app = importlib.import_module(module).app
    app.run(host="127.0.0.1", port=port, threaded=(mode == "threaded"))


if __name__ == "__main__":
    main()
