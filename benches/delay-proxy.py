#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that adds round-trip time, for benchmarks on a machine whose kernel
has no netem: every byte is delivered DELAY_MS after it was read, in each direction, and at most
WINDOW bytes per connection and direction are in flight (as a TCP window would allow), so that
one connection carries at most WINDOW / (delay) bytes a second, like a real link with that
round-trip time. It appends a line to LOG for every connection it accepts.

    delay-proxy.py LISTEN_PORT TARGET_PORT DELAY_MS WINDOW_BYTES LOG
"""
import asyncio
import signal
import sys
import time

LISTEN, TARGET = int(sys.argv[1]), int(sys.argv[2])
DELAY = int(sys.argv[3]) / 1000
WINDOW = int(sys.argv[4])
LOG = sys.argv[5]


async def pipe(reader, writer):
    """Copies reader to writer, each chunk DELAY late, with at most WINDOW bytes in flight."""
    queue = asyncio.Queue()
    in_flight = 0
    room = asyncio.Event()
    room.set()

    async def deliver():
        nonlocal in_flight
        while True:
            due, chunk = await queue.get()
            if chunk is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
            in_flight -= len(chunk)
            if in_flight < WINDOW:
                room.set()
        writer.close()

    task = asyncio.create_task(deliver())
    try:
        while True:
            await room.wait()
            chunk = await reader.read(min(65536, WINDOW))
            if not chunk:
                break
            in_flight += len(chunk)
            if in_flight >= WINDOW:
                room.clear()
            queue.put_nowait((time.monotonic() + DELAY, chunk))
    except ConnectionError:
        pass
    queue.put_nowait((0, None))
    try:
        await task
    except ConnectionError:
        pass


async def handle(client_reader, client_writer):
    with open(LOG, "a") as log:
        log.write("accepted\n")
    server_reader, server_writer = await asyncio.open_connection("127.0.0.1", TARGET)
    await asyncio.gather(
        pipe(client_reader, server_writer), pipe(server_reader, client_writer)
    )


async def main():
    await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


asyncio.run(main())
