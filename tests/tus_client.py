#!/usr/bin/env python3
"""The tus client of tests/uploads.rs: uploads FILE to a Rill server with tuspy (sha1 checksum
on every chunk). With --cut F it first sends a PATCH that stops after F of the file (the
client half-closes the connection mid-body), then resumes with a new tuspy uploader, which asks
the server for the offset (HEAD). Prints {"url", "resumed_from"} as JSON."""

import argparse
import json
import socket
import urllib.parse

from tusclient import client


def cut_patch(url, token, path, stop_at):
    """PATCH at offset 0 declaring the whole file, sending only stop_at bytes."""
    with open(path, "rb") as f:
        data = f.read()
    parts = urllib.parse.urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port))
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data[:stop_at])
    sock.shutdown(socket.SHUT_WR)
    # The server answers (or closes) once it has dealt with the cut body.
    sock.settimeout(30)
    while sock.recv(65536):
        pass
    sock.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("token")
    parser.add_argument("file")
    parser.add_argument("--meta", action="append", default=[], help="key=value")
    parser.add_argument("--cut", type=float, default=None)
    parser.add_argument("--chunk", type=int, default=1 << 20)
    args = parser.parse_args()
    metadata = dict(item.split("=", 1) for item in args.meta)
    tus = client.TusClient(args.endpoint, headers={"Authorization": f"Bearer {args.token}"})
    uploader = tus.uploader(file_path=args.file, chunk_size=args.chunk, metadata=metadata, upload_checksum=True)
    url = uploader.create_url()
    resumed_from = 0
    if args.cut is not None:
        cut_patch(url, args.token, args.file, int(uploader.get_file_size() * args.cut))
        uploader = tus.uploader(file_path=args.file, url=url, chunk_size=args.chunk, upload_checksum=True)
        resumed_from = uploader.offset
    else:
        uploader.set_url(url)
    uploader.upload()
    print(json.dumps({"url": url, "resumed_from": resumed_from}))


if __name__ == "__main__":
    main()
