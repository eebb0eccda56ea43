r"""RecBole's trainer for a model wrapped by the adapter: training as RecBole trains, evaluation
by the memory-bounded full-ranking evaluator, checkpoints that the default ``torch.load`` reads,
a resume checkpoint after every epoch (:mod:`.checkpoint`), and a clear stop when the loss
diverges (:class:`~recbole_croloss.errors.TrainingDiverged`).

:meth:`CROLossTrainer.full_ranking_batches` is the one loop over full-ranking evaluation data
(distributed sharding, the padded repeats of RecBole's sampler dropped, the mask applied);
:meth:`~CROLossTrainer.evaluate` and the faiss serving report both rank its batches.
"""
from __future__ import annotations

import math
import os
import time

import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.trainer import Trainer
from tqdm import tqdm

from .. import distributed
from ..data.protocol import MultiTargetEvalLoader
from ..data.sampled_protocol import SampledEvalLoader
from ..errors import TrainingDiverged
from ..evaluation import Exclusions, FullRankingEvaluator
from ..evaluation.sampled import add_sampled
from ..loss import LossOverflowError, NonFiniteLossError, NonFiniteScoreError
from . import checkpoint
from .adapter import CROLossAdapter
from .history import TrainingHistory
from .masks import EvalMask, RecBoleMask
from .progress import CONSOLE, EpochProgress, compact_console_stream
from .sparse import SparseItemAdam
from .train_loader import ScheduledTrainLoader, epochs_done
from .validation_log import TensorBoardValidations

#: A finite batch loss this many times the run's smallest (in magnitude, at least 1) stops the
#: run as diverged (:meth:`CROLossTrainer._check_nan`).
LOSS_GROWTH_LIMIT = 1e6
#: Evaluation data the chunked evaluator ranks: RecBole's full-sort loader, the paper protocol's.
FULL_RANKING_LOADERS = (FullSortEvalDataLoader, MultiTargetEvalLoader)


class CROLossTrainer(Trainer):
    """RecBole's trainer that

    - logs the adapter's hard-rank diagnostic with each epoch's training loss, as the official
      CROLoss code does;
    - evaluates full-sort data with the memory-bounded :class:`FullRankingEvaluator` (unless
      ``evaluator`` is None: RecBole's own evaluator), masking as ``mask`` says;
    - trains distributed on CPUs too, and saves checkpoints of tensors and plain values;
    - in a one-process run that saves its model, rewrites a resume checkpoint
      (:attr:`resume_file`) after every epoch; :meth:`resume_checkpoint` continues from one as
      if the run had never stopped;
    - stops with :class:`TrainingDiverged` (epoch, batch, loss) at a batch whose loss is not
      finite, where RecBole raises a bare ``ValueError`` for NaN only;
    - after each validation (its early-stopping decision and best checkpoint made) calls each of
      :attr:`validation_listeners` as ``listener(index, entry)`` with the validation's index in
      the run and its history entry (:mod:`.history`): TensorBoard gets every metric and the
      training loss (:mod:`.validation_log`); a tuning study reports to its trial there. A
      listener that raises stops training with that exception (a pruned trial).

    The chunked evaluator needs no ``[eval_batch_size, n_items]`` matrix when the model ranks by
    a score of user and item vectors (every model the adapter trains, and RecBole's supported
    models under ``ce``); any other model is ranked by its own ``full_sort_predict`` row block,
    and only the top-N and the metrics are the evaluator's.
    """

    def __init__(self, config, model: CROLossAdapter, evaluator: FullRankingEvaluator | None = None,
                 mask: EvalMask | None = None):
        if config["single_spec"] or config["device"].type == "cuda":
            super().__init__(config, model)
        else:
            # RecBole would wrap the model in DDP with a CUDA device id; on a CPU the trainer is
            # built as for one process and the model wrapped the way Gloo's DDP expects.
            config["single_spec"] = True
            try:
                super().__init__(config, model)
            finally:
                config["single_spec"] = False
            self.distributed_model = distributed.wrap_cpu_model(self.model)
        # RecBole names the file <model>-<time to the second>.pth, which runs started in the same
        # second share; the run's own name instead (its log's, unique), as an absolute path.
        self.saved_model_file = checkpoint.model_file_for(self.checkpoint_dir, config["model"])
        self._own_files: set[str] = set()  # the files this run has written (and may rewrite)
        if not config["single_spec"]:
            # Each rank names its checkpoint after its own log, but only rank 0 saves.
            self.saved_model_file = distributed.broadcast_object(self.saved_model_file)
        if self.clip_grad_norm and "error_if_nonfinite" not in self.clip_grad_norm:
            # Clipping computes the gradients' total norm anyway; a non-finite one stops the run
            # at its own step instead of writing NaN weights that show only in the next loss.
            self.clip_grad_norm = {**self.clip_grad_norm, "error_if_nonfinite": True}
        self.ranking_evaluator = evaluator
        self.eval_mask = mask or RecBoleMask()
        self.resume_file = checkpoint.resume_file_for(self.saved_model_file)
        self._pending_rng = None  # a resumed run's random states, put back when fit starts
        self._resumed = self._writes_resume = False
        self._epoch = self._batch = self._batches = 0
        self._last_epoch = None
        self.history = TrainingHistory(config["valid_metric_bigger"])
        self.steps = 0  # training steps done, over the whole run (a resumed one too)
        self.training_summary: dict | None = None  # history and stop reason, after fit
        self._train_data, self._fit_started = None, None
        self.per_user_hits = None  # the last evaluation's, when asked for (evaluate)
        self.validation_listeners = [TensorBoardValidations(self.tensorboard)] if distributed.is_main(config) else []
        self.epoch_limit: int | None = None  # fit trains to at most this many epochs in all (a rung's budget)
        self._loss_reference = math.inf  # the divergence check's yardstick (_check_nan); none before a batch
        self.progress: EpochProgress | None = None  # the console's view of the epochs, while fit runs

    def _build_optimizer(self, **kwargs):
        # sparse_item_updates: the item table by a row-wise Adam, the rest by Adam (glue.sparse).
        if kwargs or not self.config["sparse_item_updates"] or not isinstance(self.model, CROLossAdapter):
            return super()._build_optimizer(**kwargs)
        table = self.model.retrieval.item_table()
        return SparseItemAdam(table, self.model.parameters(), self.learning_rate, self.config["model"])

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        # RecBole pickles its whole Config into the checkpoint, which torch >= 2.6's default
        # torch.load(weights_only=True) refuses; tensors and plain values only.
        if not distributed.is_main(self.config):
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        state = checkpoint.best_state(self, epoch)
        self._save(state, saved_model_file)
        if verbose:
            self.logger.info(f"Saving current: {saved_model_file}")

    def _save(self, state: dict, path: str) -> None:
        """Write a checkpoint atomically; a file this run has not written yet is created, never
        replaced (:func:`~.checkpoint.save_new`): no run overwrites another's files."""
        if path in self._own_files:
            checkpoint.save_atomic(state, path)
        else:
            checkpoint.save_new(state, path)
            self._own_files.add(path)

    def name_checkpoints(self, suffix: str) -> None:
        """Save as ``<stem>-<suffix>.pth`` (and its resume checkpoint beside it): the runs of
        one search, under one log, keep files of their own."""
        self.saved_model_file = f"{os.path.splitext(self.saved_model_file)[0]}-{suffix}.pth"
        self.resume_file = checkpoint.resume_file_for(self.saved_model_file)

    def save_resume(self, epoch: int, train_data) -> None:
        """Write the resume checkpoint after ``epoch`` (the last finished one)."""
        state = checkpoint.resume_state(self, epoch, getattr(train_data, "generator", None),
                                        self.saved_model_file)
        self._save(state, self.resume_file)

    def resume_checkpoint(self, resume_file):
        """Continue the run that wrote the resume checkpoint ``resume_file``: its weights,
        optimizer, counters, best result and loss history now, its random states when
        :meth:`fit` starts (the data and the model are built in between, and draw from them)."""
        state = checkpoint.load(resume_file, self.device)
        checkpoint.check_resumed_negatives(state, self.model, resume_file)
        checkpoint.load_model_weights(self.model, state["state_dict"])
        self.model.load_other_parameter(state.get("other_parameter"))
        self.optimizer.load_state_dict(state["optimizer"])
        if getattr(self, "scheduler", None) is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch, self.cur_step = state["epoch"] + 1, state["cur_step"]
        self.best_valid_score, self.best_valid_result = state["best_valid_score"], state["best_valid_result"]
        self.train_loss_dict = dict(state["train_loss"])
        self.history.restore(state["history"])
        self.steps = state["steps"]
        self.saved_model_file = checkpoint.best_model_file(resume_file, state["best_model_file"])
        self.resume_file = os.path.abspath(resume_file)
        self._own_files.update((self.saved_model_file, self.resume_file))  # the run goes on in them
        self._pending_rng, self._resumed = state["rng"], True
        self.logger.info(f"Resuming from {resume_file}: epochs 0-{state['epoch']} done, best valid "
                         f"score {self.best_valid_score}; training from epoch {self.start_epoch}", extra=CONSOLE)

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False,
            callback_fn=None):
        # Only a one-process run that saves its model writes resume checkpoints: saved=False
        # promises no files, and the other ranks' random states would be missing.
        self._writes_resume = saved and self.config["single_spec"]
        self._train_data, self._fit_started = train_data, time.monotonic()
        if isinstance(train_data, ScheduledTrainLoader):
            # One pass over the loader is one round of steps; RecBole validates after each.
            self.epochs, self.eval_step = train_data.order.n_rounds, 1
            train_data.order.step = self.steps
        if self.epoch_limit is not None:
            self.epochs = min(self.epochs, self.epoch_limit)
        if self._pending_rng is not None:
            checkpoint.restore_rng_states(self._pending_rng, getattr(train_data, "generator", None))
            self._pending_rng = None
        # RecBole decides early stopping only as an epoch is evaluated; a run resumed after it
        # stopped (cur_step past stopping_step) or after its last epoch has nothing left to train.
        if self._resumed and (self.start_epoch >= self.epochs or self.cur_step > self.stopping_step):
            self.logger.info(f"{self.resume_file}: training had finished; nothing left to train", extra=CONSOLE)
            self.training_summary = self._summary(train_data)
            return self.best_valid_score, self.best_valid_result
        self._last_epoch, self.progress = None, self._epoch_progress()
        try:
            result = super().fit(train_data, valid_data, verbose, saved, show_progress,
                                 self._after_validation(callback_fn))
            self._epoch_done(self._last_epoch)
        finally:
            self.progress.close()
            self.progress = None
        if self._writes_resume and self._last_epoch is not None:
            self.save_resume(self._last_epoch, train_data)
        self.training_summary = self._summary(train_data)
        return result

    def _epoch_progress(self) -> EpochProgress:
        """The progress over this fit's epochs, on the compact console of the main process."""
        stream = compact_console_stream() if distributed.is_main(self.config) else None
        return EpochProgress(stream, self.start_epoch, self.epochs, self.logger, self.stopping_step)

    def _epoch_done(self, epoch: int | None) -> None:
        """Report epoch ``epoch`` (trained, and validated where it was due) to the progress."""
        if self.progress is None:
            return
        entries = self.history.entries
        entry = entries[-1] if entries and entries[-1]["epoch"] == epoch else None
        valid = f"valid {self.config['valid_metric']} {entry['valid_score']:.4f}" if entry else None
        self.progress.epoch_done(epoch, entry and entry["train_loss"], valid)

    def _after_validation(self, callback_fn):
        """RecBole's ``callback_fn(epoch_idx, valid_score)``, the hook its fit calls after each
        validation, calling the validation listeners first."""
        def after(epoch_idx, valid_score):
            for listener in self.validation_listeners:
                listener(len(self.history.entries) - 1, self.history.entries[-1])
            if callback_fn is not None:
                callback_fn(epoch_idx, valid_score)

        return after

    def _summary(self, train_data) -> dict:
        """The history with how training stopped, and the epochs and steps it ran."""
        if self.cur_step > self.stopping_step:
            stopped = "early_stop"
        else:
            stopped = getattr(train_data, "budget", "max_epochs")
        return self.history.summary(stopped, math.ceil(epochs_done(self.steps, train_data)), self.steps)

    def elapsed(self) -> float:
        """Seconds this process has trained (and validated) so far."""
        return 0.0 if self._fit_started is None else time.monotonic() - self._fit_started

    def _valid_epoch(self, valid_data, show_progress=False):
        valid_score, valid_result = super()._valid_epoch(valid_data, show_progress)
        self.history.add_validation(self._epoch, self.steps, epochs_done(self.steps, self._train_data),
                                    valid_score, valid_result, self.elapsed())
        return valid_score, valid_result

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if self._writes_resume and epoch_idx > self.start_epoch:
            # RecBole's fit has no hook after an epoch's last step (validation, best checkpoint,
            # best result, early-stopping count); the next epoch starts from exactly that state.
            self.save_resume(epoch_idx - 1, train_data)
        if epoch_idx > self.start_epoch:
            self._epoch_done(epoch_idx - 1)
        self._epoch, self._batch, self._batches, self._last_epoch = epoch_idx, -1, len(train_data), epoch_idx
        batch_loss = loss_func or self.model.calculate_loss

        last_loss = []

        def counted_loss(interaction):
            self._batch += 1
            last_loss[:] = [batch_loss(interaction)]
            return last_loss[0]

        try:
            total = super()._train_epoch(train_data, epoch_idx, counted_loss, show_progress)
        except (LossOverflowError, NonFiniteLossError, NonFiniteScoreError) as err:  # the loss's own
            raise self._diverged(getattr(err, "loss", float("inf")), str(err)) from err  # explanation
        except RuntimeError as err:
            if "non-finite" not in str(err) or not last_loss:  # clip_grad_norm_'s own words
                raise
            raise self._diverged(_total(last_loss[0]), "The gradients' total norm is not finite "
                                 "(clip_grad_norm found it).") from err
        batches = self._batch + 1
        self.steps += batches
        self.history.add_losses(sum(total) if isinstance(total, tuple) else total, batches)
        return total

    def _check_nan(self, loss):
        # RecBole has just read this loss to the host (loss.item()), so reading it again waits
        # for nothing more; inf stops the run as NaN does (it becomes NaN a step later).
        value = loss.detach().item()
        if not math.isfinite(value):
            raise self._diverged(value)
        # Scores that grow step after step diverge long before the loss leaves the float range.
        # The yardstick is the smallest batch loss so far in magnitude, and at least 1: CROLoss
        # with the paper's estimator can cross 0, where a ratio to it would mean nothing.
        size = abs(value)
        if size > LOSS_GROWTH_LIMIT * self._loss_reference:
            raise self._diverged(value, (
                f"The loss is finite but {size / self._loss_reference:.3g} times the smallest batch loss "
                f"of this run ({self._loss_reference:.4g}; in magnitude, counted as at least 1), more than "
                f"the {LOSS_GROWTH_LIMIT:,.0f} times that stops a run: the scores are running away. "
                "score=cosine or a bounded kernel (kernel=sigmoid) bounds them."))
        self._loss_reference = min(self._loss_reference, max(1.0, size))

    def _diverged(self, loss: float, detail: str = "") -> TrainingDiverged:
        return TrainingDiverged(self._epoch, self._batch, self._batches,
                                self._epoch * self._batches + self._batch, loss,
                                self.learning_rate, detail)

    def _generate_train_loss_output(self, epoch_idx, s_time, e_time, losses):
        output = super()._generate_train_loss_output(epoch_idx, s_time, e_time, losses)
        rank = self.model.pop_hard_rank() if isinstance(self.model, CROLossAdapter) else None
        return output if rank is None else f"{output}, hard rank: {rank:.2f}%"

    def load_checkpoint(self, checkpoint_file: str) -> None:
        """The weights of ``checkpoint_file`` on every rank (rank 0 reads, the others receive)."""
        def load():
            state = checkpoint.load(checkpoint_file, self.device)
            checkpoint.load_model_weights(self.model, state["state_dict"])
            self.model.load_other_parameter(state.get("other_parameter"))

        distributed.load_and_broadcast(self.model, load)
        self.logger.info(f"Loading model structure and parameters from {checkpoint_file}")

    def full_ranking_batches(self, eval_data, mask: EvalMask | None = None, show_progress=False):
        """Yield ``(interaction, exclusions, positive_u, positive_i)`` on the device, for this
        rank's users only (every user on exactly one rank; RecBole's padded repeats dropped);
        ``exclusions`` as ``mask`` (default: the trainer's ``eval_mask``) says."""
        mask = mask or self.eval_mask
        model = self.model.model if isinstance(self.model, CROLossAdapter) else self.model
        batches = distributed.shard_batches(eval_data) if distributed.active() else \
            ((batch, len(batch[0])) for batch in eval_data)
        if show_progress:
            batches = tqdm(batches, total=len(eval_data), ncols=100, desc="Evaluate   ")
        for (interaction, history_index, positive_u, positive_i), keep in batches:
            if keep == 0:
                continue
            if keep < len(interaction):
                interaction, history_index, positive_u, positive_i = _first_rows(
                    keep, interaction, history_index, positive_u, positive_i)
            interaction = interaction.to(self.device)
            exclusions = mask.exclusions(history_index, interaction, model)
            yield interaction, exclusions, positive_u.to(self.device), positive_i.to(self.device)

    @torch.no_grad()
    def evaluate_sampled(self, eval_data: SampledEvalLoader, load_best_model=True, model_file=None):
        """Each case's positive ranked among its own sampled negatives (ties against it)."""
        if load_best_model:
            self.load_checkpoint(model_file or self.saved_model_file)
        self.model.eval()
        totals = self.ranking_evaluator.accumulator()
        for interaction, candidates in eval_data:
            interaction, candidates = interaction.to(self.device), candidates.to(self.device)
            add_sampled(totals, _candidate_scores(self.model, interaction, candidates))
        return totals.result(self.config["metric_decimal_place"])

    def ranking_keys(self) -> torch.Tensor | None:
        """The item keys ``[n_items, d]`` the model ranks by, or ``None`` for a model ranked by
        its own ``full_sort_predict``; computed once per evaluation."""
        retrieval = self.model.retrieval if isinstance(self.model, CROLossAdapter) else None
        return None if retrieval is None else retrieval.ranking_keys()

    def top_ids(self, interaction, exclusions: Exclusions, keys: torch.Tensor | None,
                n_items: int) -> torch.Tensor:
        """The exact top ``n`` item ids ``[B, n]`` of a batch: by the model's vectors against
        ``keys`` (:meth:`ranking_keys`), else by its own ``full_sort_predict`` row block."""
        evaluator = self.ranking_evaluator
        if keys is not None:
            retrieval = self.model.retrieval
            query = retrieval.score.query(retrieval.user_vectors(interaction))
            return evaluator.topk(query, keys, exclusions)[1]
        scores = self.model.full_sort_predict(interaction).view(-1, n_items)
        exclusions.apply(scores, 0)
        return scores.topk(evaluator.n, dim=-1).indices

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False,
                 keep_per_user: bool = False):
        """RecBole's ``evaluate``; with ``keep_per_user`` (and the chunked evaluator, in one
        process) each user's Recall hits are kept in :attr:`per_user_hits`."""
        self.per_user_hits = None
        if not eval_data:
            return None
        if isinstance(eval_data, SampledEvalLoader):
            return self.evaluate_sampled(eval_data, load_best_model, model_file)
        if self.ranking_evaluator is None or not isinstance(eval_data, FULL_RANKING_LOADERS):
            return super().evaluate(eval_data, load_best_model, model_file, show_progress)
        if load_best_model:
            self.load_checkpoint(model_file or self.saved_model_file)
        self.model.eval()
        evaluator, n_items = self.ranking_evaluator, eval_data._dataset.item_num
        keep_per_user = keep_per_user and not distributed.active()
        totals, keys = evaluator.accumulator(keep_per_user), self.ranking_keys()
        uid_field = eval_data._dataset.uid_field
        for interaction, exclusions, positive_u, positive_i in self.full_ranking_batches(
                eval_data, show_progress=show_progress):
            top = self.top_ids(interaction, exclusions, keys, n_items)
            users = interaction[uid_field] if keep_per_user and uid_field in interaction else None
            evaluator.add(totals, top, positive_u, positive_i, n_items, users)
        self.per_user_hits = totals.per_user_hits()
        if distributed.active():  # exact: the sums over every rank's users
            totals.sums, totals.users = distributed.reduce_sums(totals.sums, totals.users, self.device)
        result = totals.result(self.config["metric_decimal_place"])
        self.wandblogger.log_eval_metrics(result, head="eval")
        return result


def _candidate_scores(model, interaction, candidates: torch.Tensor) -> torch.Tensor:
    """``[B, C]`` scores of each row's candidates: by the model's vectors where it ranks by
    them, else by its own ``predict``, one candidate column at a time."""
    retrieval = model.retrieval if isinstance(model, CROLossAdapter) else None
    if retrieval is not None:
        return retrieval.score.candidates(retrieval.user_vectors(interaction), retrieval.item_vectors(candidates))
    inner = model.model if isinstance(model, CROLossAdapter) else model
    columns = []
    for c in range(candidates.shape[1]):
        interaction[inner.ITEM_ID] = candidates[:, c]
        columns.append(inner.predict(interaction))
    return torch.stack(columns, 1)


def _total(loss) -> float:
    """A batch loss as RecBole sums it (a tuple of terms for some models)."""
    return float(sum(loss) if isinstance(loss, tuple) else loss.detach())


def _first_rows(keep: int, interaction, history_index, positive_u, positive_i):
    """A batch cut to its first ``keep`` users (the rest are another rank's)."""
    rows = positive_u < keep
    if history_index is not None:
        history_rows = history_index[0] < keep
        history_index = (history_index[0][history_rows], history_index[1][history_rows])
    return interaction[:keep], history_index, positive_u[rows], positive_i[rows]
