import numpy as np
from PIL import Image

from conftest import photo_with_chip
from edgeface.detect import CHIP_CENTER_FROM_BOX, chip_crop, detect_faces


def test_detected_faces_are_cropped_like_the_training_chips(tmp_path):
    """Over ten chips placed in larger photos, the crops land on the chips: the Haar box varies by about 15%
    from face to face, so the medians are held to 10% of the chip side."""
    size_errors, offsets = [], []
    for index in range(10):
        path, (left, top, side) = photo_with_chip(tmp_path, index)
        faces = detect_faces(path)
        if not faces:
            continue
        crop, (x, y, w, h) = faces[0].crop, faces[0].box
        assert crop.shape[0] == crop.shape[1]
        size_errors.append(abs(crop.shape[0] - side) / side)
        n = crop.shape[0]  # where chip_crop put the crop's corner: box centre + measured shift - half a side
        crop_left = x + w / 2 + CHIP_CENTER_FROM_BOX[0] * n - n / 2
        crop_top = y + h / 2 + CHIP_CENTER_FROM_BOX[1] * n - n / 2
        offsets.append(max(abs(crop_left - left), abs(crop_top - top)) / side)
    assert len(size_errors) >= 8
    assert np.median(size_errors) <= 0.1 and np.median(offsets) <= 0.1


def test_blank_photo_has_no_face_and_crops_pad_past_borders(tmp_path):
    path = tmp_path / "wall.png"
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(path)
    assert detect_faces(path) == []
    corner = chip_crop(np.zeros((100, 100, 3), np.uint8), (-20, -20, 60, 60))  # box hanging off the photo
    assert corner.shape == (58, 58, 3)
