"""Parameter and MAC counts against torchvision's published figures and the paper's Table 1."""
import pytest
import torch
import torchvision

from resnet_edu import models, stats

TV_WEIGHTS = {
    18: torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
    34: torchvision.models.ResNet34_Weights.IMAGENET1K_V1,
    50: torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
    101: torchvision.models.ResNet101_Weights.IMAGENET1K_V1,
    152: torchvision.models.ResNet152_Weights.IMAGENET1K_V1,
}
# He et al. (2015), Table 1, "FLOPs" row (multiply-adds), x 10^9
PAPER_TABLE1_GFLOPS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}


@pytest.mark.parametrize("depth", sorted(TV_WEIGHTS))
def test_macs_match_torchvision_published_figures(depth):
    # torchvision publishes GFLOPS (as multiply-adds) and parameter counts in the weights' metadata;
    # reading the metadata downloads nothing.
    meta = TV_WEIGHTS[depth].meta
    model = models.get_model(f"resnet{depth}")
    assert round(stats.count_macs(model, (1, 3, 224, 224)) / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-3)
    assert stats.count_parameters(model) == meta["num_params"]


@pytest.mark.parametrize("depth", sorted(PAPER_TABLE1_GFLOPS))
def test_paper_stride_placement_reproduces_table1(depth):
    model = models.get_model(f"resnet{depth}", stride_on="1x1")
    gmacs = stats.count_macs(model, (1, 3, 224, 224)) / 1e9
    assert abs(gmacs - PAPER_TABLE1_GFLOPS[depth]) < 0.1


def test_macs_equal_when_counted_on_torchvision_model():
    tv = torchvision.models.resnet50(weights=None)
    assert stats.count_macs(tv, (1, 3, 224, 224)) == stats.count_macs(models.resnet50(), (1, 3, 224, 224))


def test_macs_of_a_convolution_by_formula():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert stats.count_macs(conv, (2, 3, 10, 10)) == 2 * 8 * 10 * 10 * 3 * 3 * 3


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "plain56"])
def test_summary_rows_add_up(name):
    model = models.get_model(name)
    size = models.default_input_size(name)
    rows = stats.summarize(model, size)
    assert [r.name for r in rows] == [n for n, _ in model.named_children()]
    assert sum(r.params for r in rows) == stats.count_parameters(model)
    assert sum(r.macs for r in rows) == stats.count_macs(model, size)
    assert rows[-1].output_shape == (1, 1000 if name.startswith("resnet") and
                                     name in models.IMAGENET_MODELS else 10)


def test_per_stage_macs_stay_flat_while_parameters_grow():
    """The doubling rule: halving H, W and doubling channels keeps a 3x3 conv's MACs."""
    rows = {r.name: r for r in stats.summarize(models.resnet34(), (1, 3, 224, 224))}
    # blocks after the first of each stage: identical MACs per conv layer
    per_block_macs = [rows[f"layer{i}"].macs / n for i, n in zip(range(1, 5), [3, 4, 6, 3])]
    assert max(per_block_macs) / min(per_block_macs) < 1.1
    params = [rows[f"layer{i}"].params for i in range(1, 5)]
    assert params == sorted(params)


def test_summary_leaves_training_mode_and_statistics_alone():
    model = models.resnet20().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats.summarize(model, (2, 3, 32, 32))
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bad_input_size():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        stats.count_macs(models.resnet20(), (3, 32, 32))
