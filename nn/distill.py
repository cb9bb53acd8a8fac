"""Knowledge distillation (Hinton, Vinyals & Dean 2015): train a small student on a frozen teacher's
temperature-softened outputs plus the hard labels.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))   (batch mean)
         + (1 - alpha) * cross_entropy(student, targets)

The T^2 factor keeps the soft term's gradient magnitude independent of T. The KL is PyTorch's
`F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")`, written with
log-softmax on both sides so it stays finite for large logits. The teacher's logits are treated as
constants (detached).
"""
from __future__ import annotations

from autodiff import amp as _amp
from autodiff.autograd import no_grad
from autodiff.tensor import Tensor

__all__ = ["distillation_loss", "Distiller"]


def _check_logits(s, t, targets):
    if not isinstance(s, Tensor) or not isinstance(t, Tensor):
        raise TypeError(f"distillation_loss: logits must be Tensors, got {type(s).__name__} and {type(t).__name__}")
    if s.data.ndim != 2 or tuple(s.shape) != tuple(t.shape):
        raise ValueError(f"distillation_loss: student and teacher logits must both be (N, C) with the same shape, "
                         f"got {tuple(s.shape)} and {tuple(t.shape)}")
    if type(s.data) is not type(t.data):
        raise RuntimeError(f"distillation_loss: student logits on {s.device}, teacher logits on {t.device}")
    if targets is not None and (targets.data.ndim != 1 or targets.data.shape[0] != s.data.shape[0]):
        raise ValueError(f"distillation_loss: targets must be (N,) class indices with N={s.data.shape[0]}, "
                         f"got shape {tuple(targets.shape)}")


def distillation_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.9):
    """alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) (batchmean) + (1 - alpha) * CE(s, targets).

    `targets=None` gives the soft term alone. Under autocast the logits are cast to float32 first
    (losses run in float32, as PyTorch's autocast does).
    """
    from . import functional as F
    _check_logits(student_logits, teacher_logits, targets)
    if not T > 0:
        raise ValueError(f"distillation_loss: temperature T must be > 0, got {T}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1], got {alpha}")
    s, t = _amp.autocast_float32(student_logits, teacher_logits.detach())
    if t.data.dtype != s.data.dtype:
        t = t.to(s.data.dtype)
    n = s.data.shape[0]
    log_ps = F.log_softmax(s / T, dim=1)
    log_pt = F.log_softmax(t / T, dim=1)
    pt = log_pt.exp()
    kl = (pt * (log_pt - log_ps)).sum() / n
    soft = kl * (T * T)
    if targets is None:
        return soft
    if alpha == 1.0:
        return soft
    hard = F.cross_entropy(s, targets)
    if alpha == 0.0:
        return hard
    return soft * alpha + hard * (1.0 - alpha)


class Distiller:
    """Trains `student` to imitate a frozen `teacher`.

    `Distiller(teacher, student, optimizer, T=4.0, alpha=0.9)`: every `train_step(x, y)` runs the
    teacher in eval mode under no_grad, the student in train mode, and takes one optimizer step on
    `distillation_loss`. `fit(loader, epochs)` loops over (x, y) batches and returns the mean loss of
    each epoch; `evaluate(loader)` gives the student's accuracy in percent. The teacher is frozen: it
    is put in eval mode and its parameters get requires_grad=False.
    """

    def __init__(self, teacher, student, optimizer, T=4.0, alpha=0.9):
        if teacher is student:
            raise ValueError("Distiller: teacher and student must be different modules")
        if not T > 0 or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Distiller: need T > 0 and alpha in [0, 1], got T={T}, alpha={alpha}")
        self.teacher, self.student, self.optimizer = teacher, student, optimizer
        self.T, self.alpha = float(T), float(alpha)
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def teacher_logits(self, x):
        self.teacher.eval()
        with no_grad():
            return self.teacher(x)

    def train_step(self, x, y):
        """One optimisation step; returns the loss as a detached 0-d Tensor (no host sync)."""
        t = self.teacher_logits(x)
        self.student.train()
        s = self.student(x)
        loss = distillation_loss(s, t, y, T=self.T, alpha=self.alpha)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def fit(self, loader, epochs=1, callback=None):
        """Train for `epochs` passes over `loader`; returns the list of mean epoch losses (one host
        read per epoch). `callback(epoch, mean_loss)` is called after each epoch if given."""
        history = []
        for epoch in range(epochs):
            total, count = None, 0
            for x, y in loader:
                loss = self.train_step(x, y)
                total = loss if total is None else total + loss
                count += 1
            mean = float(total.item()) / max(count, 1) if total is not None else float("nan")
            history.append(mean)
            if callback is not None:
                callback(epoch, mean)
        return history

    def evaluate(self, loader, model=None):
        """Accuracy (percent) of `model` (default: the student) over (x, y) batches."""
        return accuracy(self.student if model is None else model, loader)


def accuracy(model, loader):
    """Top-1 accuracy in percent of `model` on the (x, y) batches of `loader` (eval mode, no_grad)."""
    was = model.training
    model.eval()
    correct, total = None, 0
    with no_grad():
        for x, y in loader:
            c = (model(x).argmax(dim=1) == y).sum()
            correct = c if correct is None else correct + c
            total += int(y.shape[0])
    model.train(was)
    return 100.0 * float(correct.item()) / max(total, 1) if correct is not None else float("nan")
