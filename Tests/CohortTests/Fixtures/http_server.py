"""A loopback HTTP server for the fetch tests: binds 127.0.0.1 on a free port, prints
`port N` on its first line, then serves until killed.

    python3 http_server.py files DIR   # the files of DIR, whole
    python3 http_server.py 503 DIR     # every request answered 503 Service Unavailable
    python3 http_server.py slow DIR    # the full length announced, half the bytes sent, then silence
"""
import functools
import http.server
import os
import sys
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    mode = "files"

    def do_GET(self):
        if self.mode == "503":
            self.send_error(503)
            return
        if self.mode == "slow":
            path = self.translate_path(self.path)
            with open(path, "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            print("sent half", flush=True)
            time.sleep(120)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def main():
    mode, directory = sys.argv[1], sys.argv[2]
    Handler.mode = mode
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=directory))
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
