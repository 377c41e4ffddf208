"""A stand-in for the parts of GitLab's REST API v4 that `headroom run --issues` uses, for
the tests (GitLab itself cannot run in CI here).

Implemented as GitLab documents them (docs.gitlab.com/api/issues, /api/notes,
/api/project_markdown_uploads, /api/rest/#pagination):
  GET  /api/v4/projects/:id/issues            labels, state, per_page (<= 100), page;
                                              X-Page, X-Per-Page, X-Next-Page, X-Total,
                                              X-Total-Pages and Link headers; newest first
  POST /api/v4/projects/:id/issues            title (required), description, labels (comma string)
  PUT  /api/v4/projects/:id/issues/:iid       title, description, labels, add_labels,
                                              remove_labels, state_event (close | reopen)
  POST /api/v4/projects/:id/issues/:iid/notes body (required)
  POST /api/v4/projects/:id/uploads           multipart/form-data with a `file` part
:id is a numeric id or the URL-encoded path. Every call needs the PRIVATE-TOKEN header.
Anything else, or an unknown parameter, is a 400 or 404 as GitLab would answer, so a
client that sends the wrong shape fails its test.

Control endpoints for the tests (no token): GET /_mock/requests (every API request seen),
GET /_mock/issues, POST /_mock/faults ([{method, path, status, retry_after, times}]),
POST /_mock/clock ({"now": RFC 3339}: closed_at and created_at), POST /_mock/seed
({"issues": [...]}), POST /_mock/person ({"iid", "add_labels", "state_event"}: what a
person does in the web UI).

Usage: python3 mock_gitlab.py PROJECT_PATH PROJECT_ID TOKEN; prints the port, then serves.
"""

import email.parser
import email.policy
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROJECT_PATH, PROJECT_ID, TOKEN = sys.argv[1], sys.argv[2], sys.argv[3]
LOCK = threading.Lock()
STATE = {"issues": {}, "next_iid": 1, "notes": [], "uploads": 0, "requests": [], "faults": [],
         "now": "2026-01-01T00:00:00Z"}

ISSUE_QUERY = {"labels", "state", "per_page", "page", "order_by", "sort", "scope"}
CREATE_KEYS = {"title", "description", "labels"}
EDIT_KEYS = {"title", "description", "labels", "add_labels", "remove_labels", "state_event"}


def label_list(text):
    return [l.strip() for l in text.split(",") if l.strip()]


def issue_json(i):
    return {
        "id": 1000 + i["iid"], "iid": i["iid"], "project_id": int(PROJECT_ID),
        "title": i["title"], "description": i["description"], "state": i["state"],
        "labels": i["labels"], "created_at": i["created_at"], "updated_at": i["updated_at"],
        "closed_at": i["closed_at"],
        "web_url": f"http://gitlab.test/{PROJECT_PATH}/-/issues/{i['iid']}",
    }


def new_issue(title, description, labels, state="opened", closed_at=None):
    iid = STATE["next_iid"]
    STATE["next_iid"] += 1
    STATE["issues"][iid] = {"iid": iid, "title": title, "description": description or "",
                            "labels": labels, "state": state, "created_at": STATE["now"],
                            "updated_at": STATE["now"], "closed_at": closed_at}
    return STATE["issues"][iid]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        raw = self.body()
        url = urllib.parse.urlsplit(self.path)
        if url.path.startswith("/_mock/"):
            return self.control(method, url.path, raw)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        with LOCK:
            seen = {"method": method, "path": url.path, "query": {k: v[-1] for k, v in query.items()},
                    "content_type": self.headers.get("Content-Type", ""), "status": None}
            STATE["requests"].append(seen)
            for f in STATE["faults"]:
                if f["times"] > 0 and f["method"] == method and f["path"] in url.path:
                    f["times"] -= 1
                    seen["status"] = f["status"]
                    headers = {"Retry-After": str(f["retry_after"])} if f.get("retry_after") is not None else {}
                    return self.answer(f["status"], {"message": f.get("message", "injected")}, headers)
            status, body, headers = self.api(method, url.path, query, raw, seen)
            seen["status"] = status
        self.answer(status, body, headers)

    def api(self, method, path, query, raw, seen):
        if self.headers.get("PRIVATE-TOKEN") != TOKEN:
            # A hostile or careless gateway echoes what it was sent.
            return 401, {"message": "401 Unauthorized", "sent": self.headers.get("PRIVATE-TOKEN")}, {}
        prefix = "/api/v4/projects/"
        if not path.startswith(prefix):
            return 404, {"error": "404 Not Found"}, {}
        rest = path[len(prefix):].split("/")
        project = rest[0]
        if project not in (PROJECT_ID, urllib.parse.quote(PROJECT_PATH, safe="")):
            return 404, {"message": "404 Project Not Found"}, {}
        rest = rest[1:]
        if rest == ["issues"] and method == "GET":
            return self.list_issues(query)
        if rest == ["issues"] and method == "POST":
            fields = self.fields(raw, seen)
            if fields is None or set(fields) - CREATE_KEYS:
                return 400, {"error": f"unexpected fields {sorted(set(fields or {}) - CREATE_KEYS)}"}, {}
            if not isinstance(fields.get("title"), str) or not fields["title"].strip():
                return 400, {"error": "title is missing"}, {}
            if "labels" in fields and not isinstance(fields["labels"], str):
                return 400, {"error": "labels is invalid"}, {}
            i = new_issue(fields["title"], fields.get("description"), label_list(fields.get("labels", "")))
            return 201, issue_json(i), {}
        if len(rest) == 2 and rest[0] == "issues" and method == "PUT":
            i = STATE["issues"].get(int(rest[1])) if rest[1].isdigit() else None
            if i is None:
                return 404, {"message": "404 Not found"}, {}
            fields = self.fields(raw, seen)
            if fields is None or not fields or set(fields) - EDIT_KEYS:
                return 400, {"error": "title, description, labels, add_labels, remove_labels, state_event ... at least one parameter must be provided"}, {}
            for k in ("labels", "add_labels", "remove_labels"):
                if k in fields and not isinstance(fields[k], str):
                    return 400, {"error": f"{k} is invalid"}, {}
            if fields.get("state_event") not in (None, "close", "reopen"):
                return 400, {"error": "state_event does not have a valid value"}, {}
            self.edit(i, fields)
            return 200, issue_json(i), {}
        if len(rest) == 3 and rest[0] == "issues" and rest[2] == "notes" and method == "POST":
            i = STATE["issues"].get(int(rest[1])) if rest[1].isdigit() else None
            if i is None:
                return 404, {"message": "404 Not found"}, {}
            fields = self.fields(raw, seen)
            if fields is None or not isinstance(fields.get("body"), str) or not fields["body"].strip():
                return 400, {"error": "body is missing"}, {}
            note = {"id": len(STATE["notes"]) + 1, "body": fields["body"], "noteable_iid": i["iid"],
                    "created_at": STATE["now"]}
            STATE["notes"].append(note)
            return 201, note, {}
        if rest == ["uploads"] and method == "POST":
            ctype = self.headers.get("Content-Type", "")
            if not ctype.startswith("multipart/form-data"):
                return 400, {"error": "file is missing"}, {}
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
            parts = [p for p in msg.iter_parts() if p.get_param("name", header="content-disposition") == "file"]
            if not parts or not parts[0].get_filename():
                return 400, {"error": "file is missing"}, {}
            data = parts[0].get_payload(decode=True) or b""
            name = parts[0].get_filename()
            seen["upload"] = {"filename": name, "bytes": len(data), "png": data[:8] == b"\x89PNG\r\n\x1a\n"}
            STATE["uploads"] += 1
            secret = f"{STATE['uploads']:032x}"
            url = f"/uploads/{secret}/{name}"
            return 201, {"id": STATE["uploads"], "alt": name.rsplit(".", 1)[0], "url": url,
                         "full_path": f"/-/project/{PROJECT_ID}/uploads/{secret}/{name}",
                         "markdown": f"![{name.rsplit('.', 1)[0]}]({url})"}, {}
        return 404, {"error": "404 Not Found"}, {}

    def fields(self, raw, seen):
        ctype = self.headers.get("Content-Type", "")
        try:
            if ctype.startswith("application/json"):
                v = json.loads(raw or b"{}")
                seen["body"] = v
                return v if isinstance(v, dict) else None
            if ctype.startswith("application/x-www-form-urlencoded"):
                v = {k: x[-1] for k, x in urllib.parse.parse_qs(raw.decode()).items()}
                seen["body"] = v
                return v
        except ValueError:
            return None
        return None

    def edit(self, i, f):
        for k in ("title", "description"):
            if k in f:
                i[k] = f[k]
        if "labels" in f:
            i["labels"] = label_list(f["labels"])
        for l in label_list(f.get("add_labels", "")):
            if l not in i["labels"]:
                i["labels"].append(l)
        gone = label_list(f.get("remove_labels", ""))
        i["labels"] = [l for l in i["labels"] if l not in gone]
        if f.get("state_event") == "close" and i["state"] == "opened":
            i["state"], i["closed_at"] = "closed", STATE["now"]
        if f.get("state_event") == "reopen" and i["state"] == "closed":
            i["state"], i["closed_at"] = "opened", None
        i["updated_at"] = STATE["now"]

    def list_issues(self, query):
        q = {k: v[-1] for k, v in query.items()}
        if set(q) - ISSUE_QUERY:
            return 400, {"error": f"unknown parameters {sorted(set(q) - ISSUE_QUERY)}"}, {}
        state = q.get("state", "all")
        if state not in ("opened", "closed", "all"):
            return 400, {"error": "state does not have a valid value"}, {}
        try:
            per_page, page = int(q.get("per_page", 20)), int(q.get("page", 1))
        except ValueError:
            return 400, {"error": "per_page is invalid"}, {}
        if not (1 <= per_page <= 100) or page < 1:
            return 400, {"error": "per_page does not have a valid value"}, {}
        wanted = label_list(q.get("labels", ""))
        found = [i for i in sorted(STATE["issues"].values(), key=lambda i: -i["iid"])
                 if all(l in i["labels"] for l in wanted) and (state == "all" or i["state"] == state)]
        pages = max(1, (len(found) + per_page - 1) // per_page)
        chunk = found[(page - 1) * per_page: page * per_page]
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(found)),
                   "X-Total-Pages": str(pages), "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else ""}
        if page < pages:
            headers["Link"] = f'<{self.path}>; rel="next"'
        return 200, [issue_json(i) for i in chunk], headers

    def control(self, method, path, raw):
        with LOCK:
            v = json.loads(raw or b"null")
            if path == "/_mock/requests":
                return self.answer(200, STATE["requests"])
            if path == "/_mock/issues":
                return self.answer(200, {"issues": [issue_json(i) for i in STATE["issues"].values()],
                                         "notes": STATE["notes"]})
            if path == "/_mock/faults":
                STATE["faults"] = [dict(f, times=f.get("times", 1)) for f in v]
                return self.answer(200, {})
            if path == "/_mock/clock":
                STATE["now"] = v["now"]
                return self.answer(200, {})
            if path == "/_mock/seed":
                for i in v["issues"]:
                    new_issue(i["title"], i.get("description", ""), i.get("labels", []), i.get("state", "opened"),
                              i.get("closed_at"))
                return self.answer(200, {})
            if path == "/_mock/person":
                self.edit(STATE["issues"][v["iid"]], {k: x for k, x in v.items() if k != "iid"})
                return self.answer(200, {})
        self.answer(404, {})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
