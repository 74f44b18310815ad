#!/usr/bin/python3
"""A small web application: one instance of it per port, configured by its environment.

GET /        reads from the database: how many notes there are, and which server answered
GET /health  answers 200 while the process runs (the load balancers' check)
POST /notes  writes the request's body as a note and answers with its id
"""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

INSTANCE = os.environ["INSTANCE"]
REGION = os.environ["REGION"]


def connect():
    return psycopg2.connect(
        host=os.environ["DB_HOST"],
        port=int(os.environ.get("DB_PORT", "5432")),
        dbname=os.environ["DB_NAME"],
        user=os.environ["DB_USER"],
        password=os.environ["DB_PASSWORD"],
        connect_timeout=3,
    )


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def database(self, sql, args=()):
        try:
            with connect() as conn, conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchone()
        except psycopg2.Error as e:
            self.reply(503, {"instance": INSTANCE, "error": str(e).strip()})
            return None

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, {"instance": INSTANCE})
        if self.path != "/":
            return self.reply(404, {"error": "not found"})
        row = self.database(
            "SELECT count(*), host(inet_server_addr()), pg_is_in_recovery() FROM notes"
        )
        if row:
            notes, server, standby = row
            self.reply(200, {"instance": INSTANCE, "region": REGION, "notes": notes,
                             "database": server, "standby": standby})

    def do_POST(self):
        if self.path != "/notes":
            return self.reply(404, {"error": "not found"})
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        row = self.database(
            "INSERT INTO notes (body, written_by) VALUES (%s, %s)"
            " RETURNING id, host(inet_server_addr())",
            (body, INSTANCE),
        )
        if row:
            self.reply(201, {"instance": INSTANCE, "id": row[0], "database": row[1]})

    def log_message(self, format, *args):
        pass


if __name__ == "__main__":
    address = (os.environ["LISTEN_ADDRESS"], int(os.environ["PORT"]))
    ThreadingHTTPServer(address, Handler).serve_forever()
