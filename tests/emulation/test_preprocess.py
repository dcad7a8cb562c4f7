"""dsparsers.emulation.preprocess and dsparsers.emulation.backproject: nvinfer's scaling, padding, colour and normalisation,
and the way back to frame pixels, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from dsparsers.emulation.backproject import FrameFilters, SizeLimits, apply_filters, backproject, to_frame
from dsparsers.errors import UsageError
from dsparsers.emulation.config_reader import parse_keyfile
from dsparsers.api.abi_types import detections
from dsparsers.emulation.preprocess import Geometry, Preprocessing, compute_geometry, even_crop, load_image, resize


# -- geometry -----------------------------------------------------------------------------------------
def test_crop_left_top_round_up_width_height_round_down_to_even():
    assert even_crop(1, 3, 641, 481) == (2, 4, 640, 480)
    assert even_crop(2, 4, 640, 480) == (2, 4, 640, 480)


def letterbox(w, h, nw, nh, symmetric=True):
    return compute_geometry(w, h, nw, nh, maintain_aspect_ratio=True, symmetric_padding=symmetric)


def test_wide_frame_fills_the_width_and_pads_top_and_bottom_equally():
    # 320 * 480 / 640 = 240 <= 320: dest 320x240, (320 - 240) // 2 = 40 rows on top
    assert letterbox(640, 480, 320, 320) == Geometry(0, 0, 640, 480, 320, 240, 0, 40, 0.5, 0.5)


def test_odd_frame_is_read_as_its_even_crop():
    assert letterbox(641, 481, 320, 320) == letterbox(640, 480, 320, 320)


def test_tall_frame_fills_the_height():
    # 320 * 640 / 480 = 426.7 > 320: dest_h = 320, dest_w = int(320 * 480 / 640) = 240, 40 columns on the left
    assert letterbox(480, 640, 320, 320) == Geometry(0, 0, 480, 640, 240, 320, 40, 0, 0.5, 0.5)


def test_symmetric_padding_uses_integer_division_and_dest_truncates():
    # 300x200 into 320x320: dest_h = int(320 * 200 / 300) = int(213.33) = 213, padding 107 -> 53 on top
    g = letterbox(300, 200, 320, 320)
    assert (g.dest_width, g.dest_height, g.offset_left, g.offset_top) == (320, 213, 0, 53)
    assert g.ratio_x == 320 / 300 and g.ratio_y == 213 / 200
    # without symmetric-padding the picture sits top-left
    g = letterbox(300, 200, 320, 320, symmetric=False)
    assert (g.offset_left, g.offset_top) == (0, 0)


def test_non_square_network():
    # 1280x720 into 640x384: 640 * 720 / 1280 = 360 <= 384 -> 640x360, (384 - 360) // 2 = 12
    g = letterbox(1280, 720, 640, 384)
    assert (g.dest_width, g.dest_height, g.offset_left, g.offset_top, g.ratio_x) == (640, 360, 0, 12, 0.5)


def test_stretch_scales_each_axis_on_its_own():
    g = compute_geometry(640, 480, 320, 320, maintain_aspect_ratio=False, symmetric_padding=True)
    assert g == Geometry(0, 0, 640, 480, 320, 320, 0, 0, 0.5, 320 / 480)


def test_a_picture_that_rounds_to_nothing_is_refused():
    with pytest.raises(UsageError, match="too small"):
        letterbox(1, 480, 320, 320)


# -- scaling ------------------------------------------------------------------------------------------
def column(values):
    return np.array(values, np.uint8).reshape(1, -1, 1)


def test_nearest_samples_pixel_centres():
    # 4 -> 2: centres (0.5, 1.5) * 2 = 1, 3
    assert resize(column([10, 20, 30, 40]), 2, 1, 0).ravel().tolist() == [20, 40]
    # 2 -> 4: centres (0.5, 1.5, 2.5, 3.5) * 0.5 = 0.25, 0.75, 1.25, 1.75 -> 0, 0, 1, 1
    assert resize(column([10, 20]), 4, 1, 0).ravel().tolist() == [10, 10, 20, 20]


def test_bilinear_interpolates_between_the_two_nearest_centres_and_rounds():
    # 4 -> 2: source positions 0.5 and 2.5: means of (10, 20) and (30, 41) -> 15, 35.5 -> 36
    assert resize(column([10, 20, 30, 41]), 2, 1, 1).ravel().tolist() == [15, 36]
    # 2 -> 4: positions -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    assert resize(column([0, 100]), 4, 1, 1).ravel().tolist() == [0, 25, 75, 100]


def test_same_size_is_the_identity():
    picture = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for f in (0, 1):
        assert np.array_equal(resize(picture, 3, 2, f), picture)


# -- the network input --------------------------------------------------------------------------------
def picture_4x2():
    """A 4-wide, 2-high RGB picture with distinct channels."""
    pic = np.zeros((2, 4, 3), np.uint8)
    pic[..., 0] = [[10, 20, 30, 40], [50, 60, 70, 80]]
    pic[..., 1] = 100
    pic[..., 2] = 200
    return pic


def test_normalisation_padding_and_channel_order():
    # 4x2 into 4x4, letterbox centred: dest 4x2, one padding row above and below
    prep = Preprocessing(4, 4, 3, net_scale_factor=0.5, offsets=(10.0, 20.0, 30.0), color_format=0,
                         maintain_aspect_ratio=True, symmetric_padding=True)
    tensor, g = prep.tensor(picture_4x2())
    assert tensor.shape == (3, 4, 4) and tensor.dtype == np.float32
    assert (g.offset_top, g.dest_height) == (1, 2)
    # padding is black before normalisation: 0.5 * (0 - offset)
    assert tensor[:, 0].tolist() == [[-5.0] * 4, [-10.0] * 4, [-15.0] * 4]
    assert tensor[:, 3].tolist() == [[-5.0] * 4, [-10.0] * 4, [-15.0] * 4]
    assert tensor[0, 1].tolist() == [0.0, 5.0, 10.0, 15.0]  # 0.5 * (10 - 10) ...
    assert tensor[1, 2].tolist() == [40.0] * 4  # 0.5 * (100 - 20)
    assert tensor[2, 1].tolist() == [85.0] * 4  # 0.5 * (200 - 30)


def test_bgr_swaps_channels_before_the_offsets_apply():
    prep = Preprocessing(4, 2, 3, net_scale_factor=1.0, offsets=(1.0, 2.0, 3.0), color_format=1)
    tensor, _ = prep.tensor(picture_4x2())
    assert tensor[0, 0].tolist() == [199.0] * 4  # blue first, minus offsets[0]
    assert tensor[2, 0].tolist() == [7.0, 17.0, 27.0, 37.0]  # red last, minus offsets[2] (3)


def test_gray_is_bt601_luma_rounded_to_8_bits():
    prep = Preprocessing(4, 2, 1, color_format=2)
    tensor, _ = prep.tensor(picture_4x2())
    # 0.299 * 10 + 0.587 * 100 + 0.114 * 200 = 84.49 -> 84; with 20: 87.48 -> 87
    assert tensor.shape == (1, 2, 4)
    assert tensor[0, 0, :2].tolist() == [84.0, 87.0]


def test_nhwc_layout():
    prep = Preprocessing(4, 2, 3, input_order=1)
    tensor, _ = prep.tensor(picture_4x2())
    assert tensor.shape == (2, 4, 3) and tensor[1, 3].tolist() == [80.0, 100.0, 200.0]


def test_the_odd_last_column_and_row_never_reach_the_network():
    pic = np.zeros((3, 5, 3), np.uint8)
    pic[:2, :4] = 50
    pic[2, :] = 255
    pic[:, 4] = 255
    tensor, g = Preprocessing(4, 2, 3).tensor(pic)  # crop 4x2, stretched to 4x2: the identity
    assert (g.crop_width, g.crop_height) == (4, 2)
    assert np.all(tensor == 50.0)


def test_settings_that_contradict_the_network_are_refused():
    with pytest.raises(UsageError, match="offsets: 2 value"):
        Preprocessing(4, 4, 3, offsets=(1.0, 2.0))
    with pytest.raises(UsageError, match="model-color-format=2 makes 1-channel input"):
        Preprocessing(4, 4, 3, color_format=2)


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(UsageError, match=r"--image .*nope\.png: no such file"):
        load_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    with pytest.raises(UsageError, match=r"--image .*bad\.png: not an image"):
        load_image(bad)


# -- back to frame pixels -----------------------------------------------------------------------------
G = letterbox(640, 480, 320, 320)  # ratio 0.5, 40 rows of padding on top


def frame_rows(objects):
    return [(int(o["class_id"]), float(o["left"]), float(o["top"]), float(o["width"]), float(o["height"]))
            for o in objects]


def test_boxes_map_back_through_offset_and_ratio():
    # left = (110 - 0) / 0.5 = 220, top = (135 - 40) / 0.5 = 190, size doubled
    assert frame_rows(to_frame(detections([(0, 110, 135, 100, 50, 0.9)]), G)) == [(0, 220, 190, 200, 100)]


def test_left_top_are_clamped_to_zero_keeping_the_size_and_right_bottom_are_not_clamped():
    objects = detections([(0, 10, 20, 50, 60, 0.9),  # top (20 - 40) / 0.5 = -40 -> 0, height still 120
                          (1, 300, 250, 20, 70, 0.9)])  # bottom (250 - 40) * 2 + 140 = 560 > 480: kept
    assert frame_rows(to_frame(objects, G)) == [(0, 20, 0, 100, 120), (1, 600, 420, 40, 140)]


def test_crop_objects_to_roi_boundary_trims_only_right_and_bottom():
    # gstnvinfer_meta_utils.cpp (DS 9.1), attach_metadata_detector: top/left raised to 0 keeping the size, then
    # with crop-objects-to-roi-boundary only width (left + width >= frame width) and height (top + height >
    # frame height - roi-bottom-offset) are trimmed. (This test used to expect all four sides clipped.)
    objects = detections([(0, 10, 20, 50, 60, 0.9), (1, 300, 250, 20, 70, 0.9)])
    # first: top -40 -> 0, height stays 120 (bottom 120 inside); second: 600 + 40 >= 640 -> width 640 - 600,
    # bottom 420 + 140 = 560 > 480 -> height 480 - 420
    filters = FrameFilters(crop_objects_to_roi_boundary=True)
    assert frame_rows(backproject(objects, G, filters, 640, 480)) == [(0, 20, 0, 100, 120), (1, 600, 420, 40, 60)]


def test_filters_by_class_and_per_class_size_limits():
    config = parse_keyfile("""[property]
num-detected-classes=4
filter-out-class-ids=3
[class-attrs-all]
detected-min-w=20
detected-max-h=100
[class-attrs-1]
detected-min-w=50
detected-max-h=0
""")
    filters = FrameFilters.from_config(config)
    assert filters.limits(1) == SizeLimits(50, 0, 0, 0) and filters.limits(2) == SizeLimits(20, 0, 0, 100)
    framed = to_frame(detections([
        (0, 0, 40, 10, 50, 0.9),   # 20x100 frame px: width == min kept, height == max kept
        (0, 0, 40, 9.5, 50, 0.9),  # 19 wide < 20: dropped
        (0, 0, 40, 10, 51, 0.9),   # 102 high > 100: dropped
        (1, 0, 40, 24, 200, 0.9),  # class 1: 48 < its own min 50: dropped
        (1, 0, 40, 25, 200, 0.9),  # 50 wide kept; its max-h 0 means no limit (400 high)
        (3, 0, 40, 50, 50, 0.9),   # filtered out by id
    ]), G)
    assert frame_rows(apply_filters(framed, filters)) == [(0, 0, 0, 20, 100), (1, 0, 0, 50, 400)]


def test_backproject_keeps_the_clustered_order():
    objects = detections([(2, 0, 40, 10, 10, 0.5), (0, 0, 40, 10, 10, 0.9), (1, 0, 40, 10, 10, 0.7)])
    assert [r[0] for r in frame_rows(backproject(objects, G))] == [2, 0, 1]
