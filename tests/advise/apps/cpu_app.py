"""CPU-bound in pure Python: every request spins the interpreter for ~5 ms
(it holds the GIL throughout), so a second thread cannot help, a second
process on a second core can."""


def burn(n=150000):
    x = 0
    for i in range(n):
        x += i * i % 7
    return x


def application(environ, start_response):
    body = b"%d\n" % burn()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
