"""Sample grids: tiles in order, padding, PNG files written atomically."""
import numpy as np
from PIL import Image

from advnets.figures.image_grid import image_grid, save_grid


def test_tiles_are_placed_row_by_row():
    images = np.stack([np.full((1, 2, 3), v, np.float32) for v in (0.0, 0.25, 0.5, 1.0, 0.75)])
    grid = image_grid(images, nrow=2, padding=1, pad_value=0.0)
    assert grid.shape == (1 + 3 * 3, 1 + 2 * 4, 1)                      # 3 rows of 2, each tile 2x3 + padding
    assert grid[1, 1, 0] == 0 and grid[1, 5, 0] == 64 and grid[4, 1, 0] == 128
    assert grid[4, 5, 0] == 255 and grid[7, 1, 0] == 191 and grid[7, 5, 0] == 0   # the empty slot stays padding


def test_save_grid_writes_a_png(tmp_path):
    rgb = np.random.default_rng(0).random((4, 3, 5, 5), dtype=np.float32)
    path = save_grid(rgb, tmp_path / "g" / "grid.png", nrow=2)
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.size == (2 + 2 * 7, 2 + 2 * 7)
        assert np.array_equal(np.asarray(im), image_grid(rgb, 2))
    assert sorted(p.name for p in path.parent.iterdir()) == ["grid.png"]
