"""The figures both export checks print: Quill's logits against a reference's, and how far the
training moved the reference from the base (so a check that compared two copies of the base
cannot pass)."""


def compare(ours, theirs, base, tolerance):
    """(max |ours - theirs|, max |theirs - base|, top-1 agreement, passed)"""
    diff = (ours - theirs).abs().max().item()
    effect = (theirs - base).abs().max().item()
    top = (ours.argmax(-1) == theirs.argmax(-1)).float().mean().item()
    return diff, effect, top, diff < tolerance and effect > 100 * tolerance
