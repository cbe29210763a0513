#!/usr/bin/env python3
"""Writes a small TensorBoard event file for the browser check tensorboard.mjs.

    target/apps-venv/bin/python tests/browser/write_tb_logs.py LOGDIR TAG [STEPS]

One run (LOGDIR itself) with a scalar TAG over STEPS steps (default 10), written with the
tensorboard package alone (no TensorFlow): its event-file writer and protobufs, values as
`simple_value`, which TensorBoard's scalars dashboard reads like tf.summary.scalar's.
"""
import math
import sys
import time

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    logdir, tag = sys.argv[1], sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) == 4 else 10
    writer = EventFileWriter(logdir)
    now = time.time()
    for step in range(steps):
        value = summary_pb2.Summary.Value(tag=tag, simple_value=math.exp(-step / 4))
        writer.add_event(event_pb2.Event(wall_time=now + step, step=step,
                                         summary=summary_pb2.Summary(value=[value])))
    writer.close()
    print(writer.get_logdir())
    return 0


if __name__ == "__main__":
    sys.exit(main())
