"""Checkpoints round-trip and never unpickle arbitrary objects."""

import pytest
import torch

from resnet_edu import checkpoint, models


def test_round_trip_with_optimizer(tmp_path):
    torch.manual_seed(0)
    model = models.resnet20()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    path = checkpoint.save_checkpoint(tmp_path / "ck.pt", model, opt, epoch=3, history={"loss": [1.0, 0.5]})
    fresh, fresh_opt = models.resnet20(), None
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    state = checkpoint.load_checkpoint(path, fresh, fresh_opt)
    assert state["metadata"] == {"epoch": 3, "history": {"loss": [1.0, 0.5]}}
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    assert fresh_opt.state_dict()["state"][0]["momentum_buffer"].abs().sum() > 0


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_arbitrary_objects_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "metadata": {"x": Evil()}}, path)
    with pytest.raises(ValueError, match="holds Python objects other than tensors and plain "
                                         "values") as refused:
        checkpoint.load_checkpoint(path)
    assert "weights_only" not in str(refused.value)      # never PyTorch's unsafe advice
    assert "this must never run" not in capsys.readouterr().out


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        checkpoint.load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        checkpoint.load_checkpoint(bad)
    bare = tmp_path / "bare.pt"
    torch.save(models.resnet20().state_dict(), bare)
    with pytest.raises(ValueError, match="no 'model' entry"):
        checkpoint.load_checkpoint(bare)


def test_resume_without_optimizer_state_is_explained(tmp_path):
    model = models.resnet20()
    path = checkpoint.save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(ValueError, match="no optimizer state"):
        checkpoint.load_checkpoint(path, model, torch.optim.SGD(model.parameters(), lr=0.1))


def test_saving_onto_a_folder_fails_first_and_leaves_nothing(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        checkpoint.save_checkpoint(folder, torch.nn.Linear(2, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints"]   # no .tmp (issue 15)


def test_a_failed_save_keeps_the_old_file_and_removes_the_tmp(tmp_path, monkeypatch):
    path = checkpoint.save_checkpoint(tmp_path / "ck.pt", torch.nn.Linear(2, 2), epoch=1)

    def disk_full(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.save_checkpoint(path, torch.nn.Linear(2, 2), epoch=2)
    monkeypatch.undo()
    assert checkpoint.load_checkpoint(path)["metadata"]["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
