"""PyDataset pipeline (no TensorFlow needed) and its NumPy augmentations: shapes, padding,
nearest labels, flip consistency, determinism across workers; agreement with the TF ops."""

from __future__ import annotations

import numpy as np
import pytest

from deconvnet_tf.data import augment_np as A
from deconvnet_tf.data.folder import DatasetError, list_examples, load_example
from deconvnet_tf.data.pydataset import FolderPyDataset, make_pydataset
from deconvnet_tf.data.synthetic import write_synthetic_dataset
from tests.conftest import requires_tf

IGNORE = 255


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("pyds") / "ds", num_train=5,
                                   num_val=3, height=40, width=56)


def _coded_pair(rng, height=37, width=45):
    """An image whose label is a function of the image (label = red % 5), no zero pixels."""
    image = rng.integers(1, 256, (height, width, 3)).astype(np.uint8)
    return image, (image[..., 0] % 5).astype(np.uint8)


# --- augment_np --------------------------------------------------------------------------


@pytest.mark.jax
def test_augment_shapes_dtypes_and_label_values(rng):
    image, label = _coded_pair(rng)
    for seed in range(8):
        out_image, out_label = A.augment(image, label, np.random.default_rng(seed),
                                         crop_size=(48, 40), ignore_label=IGNORE)
        assert out_image.shape == (48, 40, 3) and out_image.dtype == np.uint8
        assert out_label.shape == (48, 40) and out_label.dtype == np.uint8
        # Nearest-neighbour labels: only source values or the ignore label, never blends.
        assert set(np.unique(out_label)) <= set(np.unique(label)) | {IGNORE}


@pytest.mark.jax
def test_crop_and_flip_move_image_and_label_together(rng):
    image, label = _coded_pair(rng)
    flips = 0
    for seed in range(12):
        out_image, out_label = A.augment(image, label, np.random.default_rng(seed),
                                         crop_size=(50, 30), ignore_label=IGNORE, scale=None,
                                         jitter=False)
        padded = out_label == IGNORE
        # The image grows by 13 rows of padding (37 -> 50): image 0, label ignore there.
        assert padded.sum() >= 13 * 30
        assert (out_image[padded] == 0).all()
        np.testing.assert_array_equal(out_label[~padded], out_image[..., 0][~padded] % 5)
        # Find the window (and whether it was mirrored) in the source.
        rows = out_image[:37]
        found = [(flip, left) for flip in (False, True) for left in range(45 - 30 + 1)
                 if np.array_equal(rows, (image[:, ::-1] if flip else image)[:, left : left + 30])]
        assert found, f"seed {seed}: output is not a (mirrored) crop of the source"
        flips += found[0][0]
    assert 0 < flips < 12  # both outcomes happen


@pytest.mark.jax
def test_pad_and_center_crop_values():
    image = np.full((4, 6, 3), 7, np.uint8)
    label = np.full((4, 6), 2, np.uint8)
    out_image, out_label = A.pad_to_size(image, label, 6, 5, IGNORE)
    assert out_image.shape == (6, 6, 3) and (out_image[4:] == 0).all() and (out_image[:4] == 7).all()
    assert (out_label[4:] == IGNORE).all() and (out_label[:4] == 2).all()
    c_image, c_label = A.center_crop(image, label, 2, 2, IGNORE)
    assert c_image.shape == (2, 2, 3) and (c_label == 2).all()


@pytest.mark.jax
def test_color_jitter_touches_the_image_only_and_stays_in_range(rng):
    image, label = _coded_pair(rng)
    changed = 0
    for seed in range(5):
        out = A.color_jitter(image, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        changed += int(np.abs(out.astype(int) - image).max() > 0)
    assert changed == 5
    grey = np.full((3, 3, 3), 100, np.float32) / 255
    np.testing.assert_allclose(A.adjust_saturation(grey, 1.5), grey)  # no hue to saturate


@pytest.mark.jax
def test_augment_rejects_mismatched_label(rng):
    with pytest.raises(ValueError, match=r"label must have the image's \(H, W\)"):
        A.augment(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8),
                  np.random.default_rng(0), crop_size=(4, 4), ignore_label=IGNORE)


@requires_tf
def test_numpy_ops_match_tensorflow_ops(rng):
    """Same parameters -> same result as deconvnet_tf.data.augment / tf.image (labels exact)."""
    import tensorflow as tf

    from deconvnet_tf.data import augment as T

    image = rng.integers(0, 256, (37, 41, 3)).astype(np.uint8)
    label = rng.integers(0, 5, (37, 41)).astype(np.uint8)
    for factor in (0.5, 0.75, 1.1, 1.25):  # min == max fixes the random factor
        t_image, t_label = T.random_scale(tf.constant(image), tf.constant(label),
                                          tf.constant([1, 2]), factor, factor)
        n_image, n_label = A.random_scale(image, label, np.random.default_rng(0), factor, factor)
        np.testing.assert_array_equal(n_label, t_label.numpy())
        assert np.abs(n_image.astype(int) - t_image.numpy()).max() <= 1
    for height, width in ((20, 30), (45, 41), (50, 60)):
        t_image, t_label = T.center_crop(tf.constant(image), tf.constant(label), height, width, IGNORE)
        n_image, n_label = A.center_crop(image, label, height, width, IGNORE)
        np.testing.assert_array_equal(n_image, t_image.numpy())
        np.testing.assert_array_equal(n_label, t_label.numpy())
    x = rng.uniform(-0.2, 1.2, (9, 11, 3)).astype(np.float32)  # jitter leaves 0..1 in between
    for factor in (0.8, 1.2, 3.0):
        np.testing.assert_allclose(A.adjust_saturation(x, factor),
                                   tf.image.adjust_saturation(x, factor).numpy(), atol=1e-5)
        np.testing.assert_allclose(A.adjust_contrast(x, factor),
                                   tf.image.adjust_contrast(x, factor).numpy(), atol=1e-5)


# --- make_pydataset ------------------------------------------------------------------------


@pytest.mark.jax
def test_training_batches(dataset):
    ds = make_pydataset(dataset, "train", batch_size=3, crop_size=(48, 64), seed=1)
    assert isinstance(ds, FolderPyDataset) and ds.num_batches is None and ds.steps_per_pass() == 2
    images, labels = ds[0]
    assert images.shape == (3, 48, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (3, 48, 64) and labels.dtype == np.int32
    assert set(np.unique(labels)) <= {0, 1, 2, 3, 4, IGNORE}
    # The crop (48x64) is larger than most scaled 40x56 images: padding is ignore.
    assert (labels == IGNORE).any()
    # Endless: batch 1 straddles the first and second pass over the 5 examples.
    assert ds[7][0].shape == (3, 48, 64, 3)
    with pytest.raises(IndexError):
        ds[-1]


@pytest.mark.jax
def test_batches_are_a_function_of_seed_and_index(dataset):
    a = make_pydataset(dataset, "train", batch_size=2, crop_size=(32, 32), seed=3)
    b = make_pydataset(dataset, "train", batch_size=2, crop_size=(32, 32), seed=3, workers=2,
                       cache=False)
    c = make_pydataset(dataset, "train", batch_size=2, crop_size=(32, 32), seed=4)
    for index in (4, 0, 2):  # any order
        np.testing.assert_array_equal(a[index][0], b[index][0])
        np.testing.assert_array_equal(a[index][1], b[index][1])
    assert not np.array_equal(a[0][0], c[0][0])
    # Every pass is a permutation: positions 0..4 hold each example exactly once.
    order = a._order(0)
    assert sorted(order.tolist()) == list(range(5))


@pytest.mark.jax
def test_make_pydataset_forwards_every_keyword_and_names_an_unknown_one(dataset):
    ds = make_pydataset(dataset, "val", mode="whole", training=False, batch_size=2,
                        crop_size=(44, 50), ignore_label=7, flip=False, jitter=False,
                        scale=None, cache=False, validate=False, workers=2,
                        max_queue_size=3, deterministic=True, shuffle_buffer=4)
    assert (ds.mode, ds.training, ds.batch_size, ds.crop_size) == ("whole", False, 2, (44, 50))
    assert ds.ignore_label == 7 and ds.workers == 2
    with pytest.raises(TypeError, match="crop_sizes"):
        make_pydataset(dataset, "val", crop_sizes=(44, 50))


@pytest.mark.jax
def test_each_pass_visits_every_example_once(dataset):
    ds = make_pydataset(dataset, "train", mode="whole", batch_size=5, crop_size=(40, 56),
                        seed=0)
    originals = [load_example(*e)[0] for e in list_examples(dataset, "train")]
    for index in range(2):
        images, _ = ds[index]
        matches = sorted(next(i for i, o in enumerate(originals) if np.array_equal(o, im))
                         for im in images)
        assert matches == list(range(5))  # whole mode: no augmentation, a full permutation


@pytest.mark.jax
def test_evaluation_batches_keep_order_and_last_partial_batch(dataset):
    ds = make_pydataset(dataset, "val", mode="whole", training=False, batch_size=2,
                        crop_size=(44, 50))
    assert ds.num_batches == 2
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [2, 1]
    image, label = load_example(*list_examples(dataset, "val")[0])
    ref_image, ref_label = A.center_crop(image, label, 44, 50, IGNORE)
    np.testing.assert_array_equal(batches[0][0][0], ref_image)
    np.testing.assert_array_equal(batches[0][1][0], ref_label.astype(np.int32))
    assert (batches[0][1][0][40:] == IGNORE).all()  # 4 rows of padding below 40 rows
    with pytest.raises(IndexError, match="out of range: 2 batches"):
        ds[2]


@pytest.mark.jax
def test_threads_and_processes_give_the_same_batches_to_keras(dataset):
    import pickle

    ds = make_pydataset(dataset, "train", batch_size=2, crop_size=(32, 32), seed=0)
    clone = pickle.loads(pickle.dumps(ds))  # what use_multiprocessing sends to workers
    np.testing.assert_array_equal(clone[3][0], ds[3][0])


@pytest.mark.jax
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"mode": "tiles"}, "mode must be one of"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"crop_size": (32,)}, "crop_size must be"),
        ({"ignore_label": 300}, r"ignore_label must be in \[0, 255\]"),
        ({"scale": (1.5, 1.0)}, "scale must be None or"),
    ],
)
def test_bad_arguments(dataset, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_pydataset(dataset, "train", **kwargs)


@pytest.mark.jax
def test_a_file_based_source_gives_the_same_batches(dataset):
    from deconvnet_tf.data.sources import open_source

    by_root = make_pydataset(dataset, "train", batch_size=2, crop_size=(32, 32), seed=2)
    by_source = make_pydataset(None, "train", source=open_source(dataset), batch_size=2,
                               crop_size=(32, 32), seed=2)
    for index in (0, 3):
        np.testing.assert_array_equal(by_root[index][0], by_source[index][0])
        np.testing.assert_array_equal(by_root[index][1], by_source[index][1])
    with pytest.raises(ValueError, match="root is None"):
        make_pydataset(None, "train")


@pytest.mark.jax
def test_bad_dataset_names_the_file(dataset, tmp_path):
    with pytest.raises(DatasetError, match="Split file .*test.txt' not found"):
        make_pydataset(dataset, "test")
