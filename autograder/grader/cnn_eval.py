"""The grader's CNN evaluation, in a process of its own (trusted code only).

Reads one protocol message {"state": {name: array}, "images": uint8 (N, 28, 28)}
from stdin and writes {"labels": int64 (N,)} or {"error": text} to stdout.
Keeping torch out of the grading process bounds the grader's memory.
"""
import sys

from . import protocol, refmath


def main():
    request = protocol.read_message(sys.stdin.buffer)
    try:
        reply = {"labels": refmath.cnn_predict_in_process(request["state"], request["images"]).astype("int64")}
    except ValueError as exc:
        reply = {"error": str(exc)}
    protocol.write_message(sys.stdout.buffer, reply)


if __name__ == "__main__":
    main()
