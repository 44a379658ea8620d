"""One writer per field (issue 12): every part of srv_conn in server/core.h
names the file that writes it; no other server source assigns to its fields
(through the core's `c` for a connection). A static check of the source, so
a change that writes another part's state from the wrong file fails here and
goes through the owner's function instead (resp_begin_error, handler_done...)."""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Documented in core.h beside the connection part: single writers outside conn.c.
EXCEPTIONS = {
    ("access.c", "ip_counted"),
    ("access.c", "request_id_made"),
    ("access.c", "request_id"),
    ("access.c", "ar"),  # ar.request_id
    ("worker.c", "ar"),  # ar.thread_id
}


def parts():
    src = open(os.path.join(ROOT, "server", "core.h")).read()
    body = src[src.index("struct srv_conn {"):]
    body = body[: body.index("\n};")]
    out = []
    for chunk in body.split("/* ---- ")[1:]:
        owner = re.search(r"written by (\w+\.c)", chunk).group(1)
        fields = set()
        code = re.sub(r"/\*.*?\*/", "", chunk, flags=re.S)
        for line in code.splitlines():
            line = line.strip()
            if not line.endswith(";") or line.startswith("}"):
                continue
            decl = re.sub(r"\[[^\]]*\]", "", line.rstrip(";"))
            for item in decl.split(","):
                names = re.findall(r"[A-Za-z_]\w*", item)
                if names:
                    fields.add(names[-1])
        out.append((owner, fields))
    return out


def writes(src, field):
    f = re.escape(field)
    pats = [
        rf"\bc->{f}\b(?:\.\w+|\[[^\]]*\])*\s*(?:=(?!=)|\+=|-=|\|=|&=|\+\+|--)",
        rf"(?:\+\+|--)\s*c->{f}\b",
        # the field as the destination: the first argument
        rf"\b(?:buf_\w+|memset|memcpy|memmove|snprintf|strcpy)\(\s*&?c->{f}\b",
    ]
    for p in pats:
        for m in re.finditer(p, src):
            line = src.count("\n", 0, m.start()) + 1
            yield line, src.splitlines()[line - 1].strip()


def test_core_h_names_three_owners():
    owners = [o for o, _ in parts()]
    assert owners == ["conn.c", "resp.c", "worker.c"], owners
    for owner, fields in parts():
        assert len(fields) >= 8, (owner, fields)


def test_every_srv_conn_field_has_one_writer_file():
    files = [
        p
        for p in glob.glob(os.path.join(ROOT, "server", "**", "*.c"), recursive=True)
        if not p.endswith("_test.c")
    ]
    bad = []
    for owner, fields in parts():
        for path in files:
            name = os.path.basename(path)
            if name == owner:
                continue
            src = open(path).read()
            if "srv_conn" not in src:
                continue
            for field in sorted(fields):
                if (name, field) in EXCEPTIONS:
                    continue
                for line, text in writes(src, field):
                    bad.append(f"{name}:{line}: writes {owner}'s {field}: {text}")
    assert not bad, "\n".join(bad)
