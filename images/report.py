"""Size report of the images: uncompressed and pull (gzip) sizes, layers, largest packages.

Writes a markdown file and, beside it, a bar chart PNG comparing the images.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from langdetect_ops.containers import docker, inspect_image, require_engine, tool_env
from langdetect_ops.errors import UserError

SITE_PACKAGES = "/app/.venv/lib/python3.11/site-packages"
TOP_PACKAGES = 12
MB = 1e6


@dataclass
class Layer:
    size: int
    created_by: str


@dataclass
class ImageSizes:
    image: str
    size: int
    compressed: int
    layers: list[Layer]
    packages: list[tuple[str, int]]
    labels: dict[str, str] = field(default_factory=dict)


def measure(image: str) -> ImageSizes:
    info = inspect_image(image)
    return ImageSizes(
        image,
        int(info["Size"]),
        compressed_size(image),
        layers(image),
        largest_packages(image),
        info["Config"].get("Labels") or {},
    )


def compressed_size(image: str) -> int:
    """What a pull transfers, about: `docker save IMG | gzip -1 | wc -c`."""
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", 'docker save "$1" | gzip -1 | wc -c', "_", image],
        capture_output=True,
        text=True,
        env=tool_env(),
    )
    if result.returncode != 0:
        raise UserError(f"docker save {image} failed: {result.stderr[-500:]}")
    return int(result.stdout.strip())


def layers(image: str) -> list[Layer]:
    out = docker("history", "--no-trunc", "--human=false", "--format", "{{json .}}", image).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [Layer(int(row["Size"]), row["CreatedBy"]) for row in reversed(rows)]  # oldest first


def largest_packages(image: str) -> list[tuple[str, int]]:
    """`du` on site-packages inside the image, largest first, in bytes."""
    script = f"cd {SITE_PACKAGES} && du -sk -- * | sort -rn | head -n {TOP_PACKAGES}"
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", script).stdout
    return [(name, int(kb) * 1024) for kb, name in (line.split("\t", 1) for line in out.splitlines() if line)]


def write_report(images: list[str], out: Path) -> list[ImageSizes]:
    require_engine()
    sizes = [measure(image) for image in images]
    out.parent.mkdir(parents=True, exist_ok=True)
    chart = out.with_suffix(".png")
    plot(sizes, chart)
    out.write_text(markdown(sizes, chart.name))
    return sizes


def markdown(sizes: list[ImageSizes], chart_name: str) -> str:
    lines = [
        "# Image sizes",
        "",
        f"![image sizes]({chart_name})",
        "",
        "| image | uncompressed | compressed (pull, gzip -1) | non-empty layers |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| `{s.image}` | {s.size / MB:,.1f} MB | {s.compressed / MB:,.1f} MB | "
        f"{sum(layer.size > 0 for layer in s.layers)} |"
        for s in sizes
    ]
    if len(sizes) >= 2:
        smallest, largest = min(sizes, key=lambda s: s.size), max(sizes, key=lambda s: s.size)
        lines += [
            "",
            f"`{smallest.image}` is 1/{largest.size / smallest.size:.1f} of `{largest.image}` "
            f"uncompressed and 1/{largest.compressed / smallest.compressed:.1f} compressed.",
        ]
    for s in sizes:
        lines += ["", f"## `{s.image}`", "", *lineage_lines(s.labels), "| layer size | created by |", "|---:|---|"]
        lines += [
            f"| {layer.size / MB:,.1f} MB | `{short_command(layer.created_by)}` |"
            for layer in s.layers
            if layer.size > 0
        ]
        lines += ["", "Largest packages in site-packages (du):", "", "| package | size |", "|---|---:|"]
        lines += [f"| {name} | {size / MB:,.1f} MB |" for name, size in s.packages]
    return "\n".join(lines) + "\n"


def lineage_lines(labels: dict[str, str]) -> list[str]:
    keys = sorted(k for k in labels if k.startswith("langdetect.") or k == "org.opencontainers.image.version")
    return ([f"- `{k}`: `{labels[k]}`" for k in keys] + [""]) if keys else []


def short_command(created_by: str, width: int = 110) -> str:
    """The step a layer came from, without the build-arg preamble Docker puts before RUN commands."""
    text = " ".join(created_by.replace("|", "\\|").replace("`", "'").split())
    if not text:
        return "(base image, docker import)"
    if "/bin/sh -c " in text:
        command = text.split("/bin/sh -c ", 1)[1]
        text = command.removeprefix("#(nop) ") if command.startswith("#(nop)") else f"RUN {command}"
    return text if len(text) <= width else text[: width - 1] + "…"


def plot(sizes: list[ImageSizes], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.image for s in sizes]
    positions = range(len(sizes))
    fig, ax = plt.subplots(figsize=(7, 4))
    for offset, label, values in (
        (-0.2, "uncompressed", [s.size for s in sizes]),
        (0.2, "compressed (pull)", [s.compressed for s in sizes]),
    ):
        bars = ax.bar([p + offset for p in positions], [v / MB for v in values], width=0.4, label=label)
        ax.bar_label(bars, labels=[f"{v / MB:,.0f} MB" for v in values], fontsize=8)
    ax.set_xticks(list(positions), names)
    ax.set_ylabel("MB")
    ax.set_title("langdetect images")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
