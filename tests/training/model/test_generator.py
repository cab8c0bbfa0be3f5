"""The generator as the trainer uses it: one pass, gradients everywhere, a codebook left alone."""

import torch

from tests.training.conftest import seed_codebook
from training.model import build_generator


def test_a_training_pass_reaches_every_parameter_and_leaves_the_codebook(tiny_config):
    generator = build_generator(tiny_config).train()
    seed_codebook(generator)
    buffers = {name: b.clone() for name, b in generator.named_buffers()}
    wav = 0.3 * torch.randn(2, 72000)  # a 3 s crop: 120 frames
    out = generator(wav)
    assert out.audio.shape == (2, 72000)
    assert out.codes.shape == (2, 120)
    assert out.latents.shape == (2, 64, 120)
    loss = (out.audio - wav).abs().mean() + 1000 * out.commitment_loss
    loss.backward()
    # AdaLayerNorm rows other than the condition used get no gradient, as in the reference.
    unused = {"backbone.input_norm.scale.weight", "backbone.input_norm.shift.weight"}
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None, name
        if ".norm.scale" not in name and ".norm.shift" not in name and name not in unused:
            assert parameter.grad.abs().sum() > 0, name
    assert all(torch.equal(b, buffers[name]) for name, b in generator.named_buffers())


def test_statistics_of_a_pass_count_every_frame(tiny_config):
    generator = build_generator(tiny_config)
    seed_codebook(generator)
    with torch.no_grad():
        out = generator(0.3 * torch.randn(3, 24000))
    counts, sums = generator.quantizer.assignment_statistics(out.latents, out.codes)
    assert counts.sum() == 3 * 40
    torch.testing.assert_close(sums.sum(0), out.latents.sum(dim=(0, 2)), rtol=1e-5, atol=1e-4)


def test_decode_is_synthesis_of_the_codebook_vectors(tiny_generator):
    codes = torch.randint(0, 512, (2, 9))
    with torch.no_grad():
        expected = tiny_generator.synthesize(tiny_generator.quantizer.embed[codes].transpose(1, 2))
        assert torch.equal(tiny_generator.decode(codes), expected)


def test_the_condition_row_changes_the_output(tiny_config):
    generator = build_generator(tiny_config).eval()
    with torch.no_grad():
        generator.backbone.input_norm.scale.weight[2].mul_(2.0)
        codes = torch.randint(0, 512, (1, 6))
        assert not torch.allclose(generator.decode(codes, 0), generator.decode(codes, 2))


def test_an_unquantized_pass_decodes_the_latents_and_still_assigns_codes(tiny_generator):
    wav = 0.3 * torch.randn(2, 24000)
    with torch.no_grad():
        quantized = tiny_generator(wav)
        direct = tiny_generator(wav, quantize=False)
        assert torch.equal(direct.audio, tiny_generator.synthesize(direct.latents))
        assert not torch.equal(direct.audio, quantized.audio)
    assert torch.equal(direct.codes, quantized.codes)
    assert torch.equal(direct.commitment_loss, quantized.commitment_loss)
