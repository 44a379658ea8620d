"""run_single_user: Locust's in-process debugging helper. A locustfile may
import it (it is usually called under `if __name__ == "__main__":`, which
aiload never runs); calling it says how to run the file instead."""


def run_single_user(user_class, *args, **kwargs):
    raise RuntimeError("run_single_user is Locust's debugger entry point; with aiload run the "
                       "file with `aiload -f FILE --headless -u 1 -r 1 -H HOST`")
