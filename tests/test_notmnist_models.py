"""The autoencoder registry, weight sharing, the conv DAE's exact structure, and the metrics."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.experiments.compression import (RAW_BYTES, compression_table, dequantise_8bit, jpeg_round_trip,
                                           quantise_8bit, quantiser_range)
from cnnlab.metrics import psnr, psnr_from_mse, ssim
from cnnlab.models.autoencoders import (AUTOENCODERS, create_autoencoder, describe_autoencoder,
                                        layer_output_shapes, list_autoencoders)

# ---- every registered autoencoder --------------------------------------------------------------------


@pytest.mark.parametrize("name", list_autoencoders())
def test_autoencoder_contract(name):
    model = create_autoencoder(name).eval()
    x = torch.rand(3, 1, 28, 28)
    code = model.encode(x)
    assert tuple(code.shape[1:]) == model.code_shape
    out = model(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(model.decoder(model.encoder(x)), out)
    assert torch.equal(model.decode(code), out)
    assert model.has_logits
    assert torch.allclose(torch.sigmoid(model.decode_logits(code)), out, atol=1e-6)
    assert torch.allclose(torch.sigmoid(model.forward_logits(x)), out, atol=1e-6)


def test_decode_logits_refuses_a_decoder_without_a_final_sigmoid():
    from cnnlab.models.autoencoders import Autoencoder

    model = Autoencoder(nn.Flatten(), nn.Sequential(nn.Linear(784, 784), nn.Unflatten(1, (1, 28, 28))), (784,))
    assert not model.has_logits
    with pytest.raises(TypeError, match="does not end in nn.Sigmoid"):
        model.decode_logits(torch.rand(2, 784))

    class Skip(type(create_autoencoder("dense-ae"))):  # its own forward: encode -> decode no longer is the model
        def forward(self, x):
            return (self.decode(self.encode(x)) + x) / 2

    skip = create_autoencoder("dense-ae")
    skip.__class__ = Skip
    assert not skip.has_logits


@pytest.mark.parametrize("name", list_autoencoders())
def test_a_runs_final_test_loss_is_the_function_its_epochs_log(name):
    from cnnlab.train.autoencoder import reconstruct_scored

    torch.manual_seed(0)
    model = create_autoencoder(name).eval()
    x, noisy = torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        out = model(noisy)
    bce = torch.nn.functional.binary_cross_entropy(out, x).item()
    for loss, expected in (("bce", bce), ("mse", torch.nn.functional.mse_loss(out, x).item())):
        reconstruction, value = reconstruct_scored(model, noisy, x, loss, batch_size=2)
        assert value == pytest.approx(expected, rel=1e-5) and torch.allclose(reconstruction, out, atol=1e-6)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("name", list_autoencoders())
def test_training_bce_from_logits_is_the_bce_of_the_reconstruction(name, precision):
    """The module's BCE (from the decoder's logits) has the value and the gradients of BCE on ``model(x)``."""
    from cnnlab.train.autoencoder import AutoencoderModule
    from cnnlab.train.options import AutoencoderOptim

    torch.manual_seed(0)
    module = AutoencoderModule(create_autoencoder(name), AutoencoderOptim(loss="bce"), channels_last=False)
    assert module.from_logits
    assert not AutoencoderModule(create_autoencoder(name), AutoencoderOptim(loss="mse")).from_logits
    x = torch.rand(4, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
        ours = module._shared_step((x, x), "train")
        reference = torch.nn.functional.binary_cross_entropy(module(x).float(), x)
    tolerance = 1e-5 if precision == "32-true" else 2e-2  # bf16 rounds the sigmoid's output near 0 and 1
    assert abs(ours.item() - reference.item()) < tolerance * reference.item()
    grads = [torch.autograd.grad(loss, module.model.encoder.parameters(), retain_graph=True) for loss in (ours, reference)]
    for ours_g, reference_g in zip(*grads):
        assert torch.linalg.norm(ours_g - reference_g) < 5 * tolerance * torch.linalg.norm(reference_g)


def test_registry_refuses_duplicates_and_names_unknowns():
    with pytest.raises(ValueError):
        AUTOENCODERS.register("dense-ae")(lambda: None)
    with pytest.raises(Exception, match="did you mean 'conv-dae'"):
        create_autoencoder("conv-da")


def test_dense_ae_shares_weights_between_the_three_models():
    model = create_autoencoder("dense-ae", code_dim=16)
    encoder, decoder = model.encoder, model.decoder
    x = torch.rand(4, 1, 28, 28)
    assert model.encode(x).shape == (4, 16)
    before = model(x)
    with torch.no_grad():
        encoder[1].weight.add_(0.5)  # change the encoder alone...
    after = model(x)
    assert not torch.equal(before, after)  # ...and the autoencoder sees it
    assert torch.equal(decoder(encoder(x)), after)
    assert {id(p) for p in model.parameters()} == {id(p) for p in encoder.parameters()} | {id(p) for p in decoder.parameters()}


def test_xavier_init_zero_decoder_bias_and_live_code_units():
    model = create_autoencoder("dense-ae", code_dim=32)
    layer = model.encoder[1]
    bound = math.sqrt(6 / (784 + 32))  # Glorot uniform
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    assert torch.all(layer.bias == 0.1)  # ReLU code units start alive
    assert torch.count_nonzero(model.decoder[0].bias) == 0


def test_conv_dae_is_exactly_the_labs_structure():
    layers = layer_output_shapes(create_autoencoder("conv-dae"))
    assert [(kind, shape) for _, kind, shape in layers] == [
        ("Conv2d", (32, 28, 28)), ("ReLU", (32, 28, 28)), ("MaxPool2d", (32, 14, 14)),
        ("Conv2d", (64, 14, 14)), ("ReLU", (64, 14, 14)), ("MaxPool2d", (64, 7, 7)),
        ("Conv2d", (128, 7, 7)), ("ReLU", (128, 7, 7)),
        ("Conv2d", (128, 7, 7)), ("ReLU", (128, 7, 7)), ("Upsample", (128, 14, 14)),
        ("Conv2d", (64, 14, 14)), ("ReLU", (64, 14, 14)), ("Upsample", (64, 28, 28)),
        ("Conv2d", (1, 28, 28)), ("Sigmoid", (1, 28, 28)),
    ]
    model = create_autoencoder("conv-dae")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.stride == (1, 1) for c in convs)
    assert all(m.mode == "nearest" for m in model.modules() if isinstance(m, nn.Upsample))
    assert model.code_size == 128 * 7 * 7 == 6272


def test_summary_text_states_shapes_and_code_size():
    text = describe_autoencoder(create_autoencoder("conv-dae"))
    assert "[1, 128, 7, 7]" in text and "[1, 1, 28, 28]" in text
    assert "128x7x7 = 6272 values per image vs 784" in text and "does NOT compress" in text
    assert "input 1x28x28 -> output 1x28x28 (same shape)" in text


# ---- metrics ------------------------------------------------------------------------------------------


def test_psnr_and_ssim():
    x = torch.rand(8, 1, 28, 28)
    assert psnr(x, x) == math.inf
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert psnr(torch.zeros_like(x), torch.full_like(x, 0.1)) == pytest.approx(20.0, abs=1e-4)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-5)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    assert 0 < ssim(noisy, x) < ssim((x + 0.05 * torch.randn_like(x)).clamp(0, 1), x) < 1


def test_ssim_matches_a_direct_window_computation():
    torch.manual_seed(0)
    x, y = torch.rand(1, 1, 11, 11), torch.rand(1, 1, 11, 11)  # exactly one 11x11 window
    g = torch.exp(-(torch.arange(11.0) - 5) ** 2 / (2 * 1.5 ** 2))
    w = (g[:, None] * g[None, :]) / (g.sum() ** 2)
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy, cxy = (w * x * x).sum() - mx ** 2, (w * y * y).sum() - my ** 2, (w * x * y).sum() - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    expected = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    assert ssim(x, y) == pytest.approx(float(expected), abs=1e-5)


def test_ssim_scores_every_valid_window_of_every_channel():
    torch.manual_seed(1)
    x, y = torch.rand(2, 2, 13, 14), torch.rand(2, 2, 13, 14)  # 3 x 4 windows per channel, uneven sides
    g = torch.exp(-(torch.arange(11.0) - 5) ** 2 / (2 * 1.5 ** 2))
    w = (g[:, None] * g[None, :]) / (g.sum() ** 2)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    scores = []
    for i in range(3):
        for j in range(4):
            a, b = x[..., i:i + 11, j:j + 11], y[..., i:i + 11, j:j + 11]  # (2, 2, 11, 11)
            mx, my = (w * a).sum((-2, -1)), (w * b).sum((-2, -1))
            vx, vy = (w * a * a).sum((-2, -1)) - mx ** 2, (w * b * b).sum((-2, -1)) - my ** 2
            cxy = (w * a * b).sum((-2, -1)) - mx * my
            scores.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    assert ssim(x, y) == pytest.approx(float(torch.stack(scores).mean()), abs=1e-5)


def test_ssim_is_float32_whatever_the_default_or_input_dtype():
    x = torch.rand(2, 1, 28, 28)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert ssim(x.double(), x.double()) == pytest.approx(1.0, abs=1e-5)
    finally:
        torch.set_default_dtype(before)
    assert ssim(x.bfloat16(), x.bfloat16()) == pytest.approx(1.0, abs=1e-5)


def test_ssim_refuses_images_smaller_than_its_window_or_of_another_shape():
    with pytest.raises(ValueError, match="at least 11x11 pixels.*got 10x28"):
        ssim(torch.rand(1, 1, 10, 28), torch.rand(1, 1, 10, 28))
    with pytest.raises(ValueError, match=r"two \(B, C, H, W\) tensors of one shape; got \(28, 28\)"):
        ssim(torch.rand(28, 28), torch.rand(28, 28))
    with pytest.raises(ValueError, match="of one shape"):
        ssim(torch.rand(2, 1, 28, 28), torch.rand(1, 1, 28, 28))


@pytest.mark.parametrize("quality_level", [1, 50, 95])
def test_jpeg_round_trip_is_the_codec_pil_writes(quality_level):
    import io

    import numpy as np
    from PIL import Image
    from torchvision.io import encode_jpeg

    torch.manual_seed(quality_level)
    images = (torch.rand(6, 28, 28) > 0.6).to(torch.uint8).mul(255).numpy()  # letter-like black and white
    size, decoded = jpeg_round_trip(images, quality_level)
    sizes, pixels = [], []
    for image in images:
        buf = io.BytesIO()
        Image.fromarray(image, "L").save(buf, "JPEG", quality=quality_level)
        assert encode_jpeg(torch.from_numpy(image)[None], quality=quality_level).numpy().tobytes() == buf.getvalue()
        sizes.append(buf.tell())
        pixels.append(np.asarray(Image.open(buf)))
    assert size == pytest.approx(np.mean(sizes)) and decoded.shape == (6, 1, 28, 28)
    assert torch.equal(decoded, torch.from_numpy(np.stack(pixels)).float().div(255).unsqueeze(1))
    assert 0 < size <= jpeg_round_trip(images, 100)[0]  # quality costs bytes
    flipped_size, flipped = jpeg_round_trip(images[:, ::-1], quality_level)  # a view numpy strides backwards
    assert flipped.shape == decoded.shape and flipped_size > 0


def test_8bit_quantisation_round_trip():
    codes = torch.rand(50, 32) * 7
    low, high = quantiser_range(codes)
    q = quantise_8bit(codes, low, high)
    assert q.dtype == torch.uint8 and q.shape == (50, 32)
    assert (dequantise_8bit(q, low, high) - codes).abs().max() <= (high - low).max() / 255 / 2 + 1e-5


def test_compression_table_byte_counts():
    model = create_autoencoder("dense-ae", code_dim=32)
    x = torch.rand(12, 1, 28, 28).round()  # crisp black and white, like letters
    rows, one_off = compression_table(model, x, x)
    by_method = {r["method"].split(" (")[0]: r for r in rows}
    assert by_method["raw uint8 pixels"]["bytes_per_image"] == RAW_BYTES == 784
    assert by_method["AE code float32"]["bytes_per_image"] == 32 * 4
    assert by_method["AE code 8-bit"]["bytes_per_image"] == 32
    assert by_method["AE code 8-bit"]["ratio_vs_raw"] == pytest.approx(784 / 32, abs=0.01)
    assert by_method["raw uint8 pixels"]["psnr_db"] == math.inf
    assert by_method["PNG"]["psnr_db"] == math.inf  # lossless
    assert sum(r["method"].startswith("JPEG at the 8-bit code's") for r in rows) == 2  # at its PSNR, at its SSIM
    assert [s["label"] for s in one_off["codec_sweeps"]["JPEG"]][:2] == ["quality 1", "quality 2"]
    assert one_off["decoder_bytes_float32"] == (32 * 784 + 784) * 4
    assert one_off["quantiser_range_bytes"] == 2 * 32 * 4
    assert all(r["bytes_per_image"] is None or r["bytes_per_image"] > 0 for r in rows)
    assert all(r["note"] for r in rows if r["bytes_per_image"] is None)  # an unmatched codec says why
