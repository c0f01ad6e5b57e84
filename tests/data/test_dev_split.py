"""The dev-split protocol: split selectors by file-name prefix (CamVid's sequence) and by fold,
and a training run that validates on frames it never trains on."""

from __future__ import annotations

import pytest

from deconvnet_tf.data.folder import DatasetError
from deconvnet_tf.data.sources import open_source, parse_split, split_union
from deconvnet_tf.data.synthetic import write_synthetic_dataset


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = write_synthetic_dataset(tmp_path_factory.mktemp("dev") / "data", num_train=23,
                                   num_val=4, height=32, width=32)
    return open_source(root)


def names(records):
    return [r.image.name for r in records]


def test_prefix_selectors_split_the_training_frames_disjointly(source):
    everything = names(source.records("train"))
    held_out = names(source.records("train[train_0000]"))  # stems train_00000 .. train_00009
    rest = names(source.records("train[-train_0000]"))
    assert held_out == [f"train_{i:05d}.png" for i in range(10)]
    assert sorted(held_out + rest) == sorted(everything) and not set(held_out) & set(rest)
    both = names(source.records("train[train_0000, train_0002]"))
    assert len(both) == 13 and set(held_out) < set(both)


def test_folds_partition_the_split(source):
    folds = [names(source.records(f"train[{k}/5]")) for k in range(5)]
    assert sorted(sum(folds, [])) == sorted(names(source.records("train")))
    assert [len(f) for f in folds] == [5, 5, 5, 4, 4]
    complement = names(source.records("train[-2/5]"))
    assert sorted(complement + folds[2]) == sorted(names(source.records("train")))


@pytest.mark.parametrize("split, message", [
    ("train[5/5]", "needs 0 <= K < N"),
    ("train[nothing]", "keeps 0 of 23"),
    ("train[-train_]", "keeps 0 of 23"),
    ("train[train_]", "keeps 23 of 23"),
    ("train[x", "expected NAME"),
    ("train[ , ]", "empty prefix list"),
    # unions
    ("train+train[0/5]", "is in both 'train' and 'train\\[0/5\\]'"),
    ("train[0/5]+", "found an empty part"),
    ("+val", "found an empty part"),
    ("train++val", "found an empty part"),
    ("train[nothing]+val", "keeps 0 of 23"),
])
def test_bad_selectors_are_clear_errors(source, split, message):
    with pytest.raises(DatasetError, match=message):
        source.records(split)


def test_parse_split():
    assert parse_split("val") == ("val", None)
    assert parse_split("train[-0001TP]") == ("train", "-0001TP")
    assert parse_split("train[1/5]") == ("train", "1/5")


def test_a_union_of_splits_joins_their_records_in_order(source):
    """``train[-0/5]+val``: the training folds and the val split (TFDS's ``+``), e.g. to train a
    final model on more images while a fold stays held out."""
    union = names(source.records("train[-0/5]+val"))
    assert union == names(source.records("train[-0/5]")) + names(source.records("val"))
    assert len(union) == 18 + 4 and not set(union) & set(names(source.records("train[0/5]")))
    assert source.num_examples("train[0/5] + train[1/5]") == 10
    assert len(list(source.dataset("train[2/5]+val"))) == 5 + 4


def test_split_union_splits_only_outside_brackets():
    assert split_union("val") == ["val"]
    assert split_union("train[-0/5]+val") == ["train[-0/5]", "val"]
    assert split_union("train[a+b]+val") == ["train[a+b]", "val"]


def test_training_with_a_held_out_sequence(tmp_path, source):
    from deconvnet_tf.training.config import TrainConfig
    from deconvnet_tf.training.train import train

    config = TrainConfig(preset="deconvnet_tiny", data=str(source.info.root), epochs=1,
                         batch_size=4, crop_size=[32, 32], output=str(tmp_path / "run"),
                         train_split="train[-train_0000]", val_split="train[train_0000]")
    result = train(config, verbose=0)
    assert "val_mean_iou" in result.history
    saved = TrainConfig.load(tmp_path / "run" / "config.json")
    assert (saved.train_split, saved.val_split) == ("train[-train_0000]", "train[train_0000]")
