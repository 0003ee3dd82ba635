"""The contribution map built from enfuse-style masks."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from focuswrap import contribution


def _write_masks(folder: Path, size=(60, 40), frames=3) -> None:
    """Frame k wins the k-th horizontal band; band 0 is weak everywhere (no frame sharp)."""
    w, h = size
    band = h // frames
    soft_files, hard_files = contribution.mask_files(folder, frames)
    for k in range(frames):
        hard = Image.new("F", size, 0.0)
        soft = Image.new("F", size, 0.0)
        hard.paste(255.0, (0, k * band, w, (k + 1) * band))
        soft.paste(0.3 if k else 0.001, (0, k * band, w, (k + 1) * band))
        hard.save(hard_files[k])
        soft.save(soft_files[k])


def test_map_colours_follow_the_winning_frame(tmp_path):
    _write_masks(tmp_path)
    out = contribution.build(tmp_path, ["a.jpg", "b.jpg", "c.jpg"], tmp_path / "map.png")
    with Image.open(out) as m:
        m = m.convert("RGB")
        assert m.width == 60 and m.height > 40  # legend below the map
        assert contribution.frame_at(m, (30, 20)) == 1
        assert contribution.frame_at(m, (30, 33)) == 2


def test_weak_regions_are_marked_not_coloured(tmp_path):
    _write_masks(tmp_path)
    out = contribution.build(tmp_path, ["a.jpg", "b.jpg", "c.jpg"], tmp_path / "map.png")
    with Image.open(out) as m:
        m = m.convert("RGB")
        band0 = {m.getpixel((x, 5)) for x in range(60)}
    assert band0 <= {(110, 110, 110), (40, 40, 40)}
    assert len(band0) == 2  # stripes


def test_large_maps_are_scaled_down(tmp_path):
    _write_masks(tmp_path, size=(400, 300))
    out = contribution.build(tmp_path, ["a", "b", "c"], tmp_path / "map.png", max_side=200)
    with Image.open(out) as m:
        assert m.width == 200
