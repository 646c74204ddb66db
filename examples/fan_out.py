"""Fan-out: resize a batch of images as child runs, in parallel, and collect the results.

Each `await resize_image(...)` inside the parent starts a child run; `asyncio.gather`
runs them side by side. The parent parks as `waiting` (holding no worker slot) until its
children finish, and a resumed parent never starts the same child twice: each child's
run id comes from the parent's run id and the call's cursor key.

Run it with `uv run python examples/fan_out.py`: with no DURABLE_DATABASE_URL or
DATABASE_URL set, the engine starts a local PostgreSQL in ./.durable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import durable
from durable import Engine, step, workflow


@dataclass
class Thumbnail:
    image: str
    width: int
    bytes: int


@step(retries=2, initial_interval=0.5)
async def download(image: str) -> int:
    await asyncio.sleep(0.1)  # stands in for an HTTP request
    return 200_000 + 7_919 * (sum(map(ord, image)) % 50)  # the original's size in bytes


@step
async def resize(image: str, size: int, width: int) -> Thumbnail:
    await asyncio.sleep(0.1)  # stands in for the CPU work
    return Thumbnail(image=image, width=width, bytes=size * width // 4000)


@workflow(name="resize_image")
async def resize_image(image: str, width: int) -> Thumbnail:
    size = await download(image)
    return await resize(image, size, width)


@workflow(name="resize_batch")
async def resize_batch(images: list[str], width: int = 320) -> dict[str, int]:
    """Resize every image as its own child run; return each thumbnail's size in bytes."""
    thumbnails = await asyncio.gather(*(resize_image(image, width) for image in images))
    await durable.set_event("done", len(thumbnails))
    return {t.image: t.bytes for t in thumbnails}


async def main() -> None:
    images = [f"photos/{n:03d}.jpg" for n in range(8)]
    async with Engine(workflows=[resize_batch, resize_image]) as engine:
        handle = await engine.start(resize_batch, images)
        print(f"run {handle.run_id}: resizing {len(images)} images as child runs")
        for image, size in (await handle.result(timeout=60)).items():
            print(f"  {image}: {size} bytes")
        parent = await engine.get_run(handle.run_id)
        print(f"{len(parent.children)} child runs; the parent ran {parent.attempt} time(s):")
        for recorded in parent.steps:
            print(f"  {recorded.cursor_key:<28} {recorded.status}")


if __name__ == "__main__":
    asyncio.run(main())
