"""The words of a suitability report: evidence sentences with their numbers, and the recommendation."""

from __future__ import annotations

import math


def describe(verdicts, model, non_numeric, notes, model_note, *, alpha, min_gain, suitable, torn, sequence):
    """Return (evidence sentences, decisive first; recommendation) for `check_suitability`'s results."""
    evidence = []
    if non_numeric:
        shown = ", ".join(repr(c) for c in non_numeric[:5]) + (", ..." if len(non_numeric) > 5 else "")
        plural = len(non_numeric) > 1
        evidence.append(
            f"Column{'s' * plural} {shown} {'are' if plural else 'is'} not numeric: a grid holds a number in every "
            "cell, so this is a table whatever the order of the other columns."
        )
    per_axis = []
    for verdict in verdicts:
        sentences = _axis_sentences(verdict, model, alpha, min_gain)
        per_axis.append((verdict.ordered != suitable, sentences))  # axes that agree with the verdict come first
    for _, sentences in sorted(per_axis, key=lambda pair: pair[0]):
        evidence += sentences
    if not verdicts:
        evidence.append("No axis of a sample is longer than one cell: there is no order to use.")
    if model_note:  # set only when the model stage was wanted but could not run
        evidence.append(model_note)
    evidence += notes
    return evidence, _recommendation(verdicts, non_numeric, model, torn and model is None, suitable, sequence)


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def _axis_sentences(v, model, alpha, min_gain) -> list[str]:
    name, out = v.name, []
    best_p = 2 / math.factorial(v.length) if v.length < 8 else 0.0  # orders are counted up to reversal
    if best_p >= alpha:
        out.append(
            f"Only {v.length} {name}: even a perfect order could not be told apart from chance (the smallest "
            f"possible p-value is {best_p:.2g}, above alpha = {alpha:g})."
        )
    shuffled = f"{v.statistic:.2f} one step apart against {v.null_mean:.2f} with the {v.length} {name} shuffled"
    if v.p_value >= alpha:
        out.append(
            f"Neighbouring {name} are no more alike than random pairs: mean |correlation| {shuffled} "
            f"(z = {v.z:.1f}, p = {v.p_value:.3g})."
        )
    elif v.grouped_p_value >= alpha:
        out.append(
            f"Neighbouring {name} are more alike than random pairs (mean |correlation| {shuffled}; z = {v.z:.1f}, "
            f"p = {v.p_value:.3g}), but no more than {v.n_groups} contiguous groups of related {name} explain: "
            f"shuffling within and among the groups keeps {v.grouped_null_mean:.2f} (z = {v.grouped_z:.1f}, "
            f"p = {v.grouped_p_value:.3g}). Related measurements stored side by side are no grid."
        )
    else:
        out.append(
            f"Neighbouring {name} are more alike than random pairs (mean |correlation| {shuffled}; z = {v.z:.1f}, "
            f"p = {v.p_value:.3g}) and than any grouping of related {name} explains (the least favourable, "
            f"{v.n_groups} groups, keeps {v.grouped_null_mean:.2f}; z = {v.grouped_z:.1f}, p = {v.grouped_p_value:.3g})."
        )
        d = v.distances
        if len(d) >= 3:
            middle = len(d) // 2
            out.append(
                f"Dependence along the {name} by distance: {v.dependence[0]:.2f} at 1, "
                f"{v.dependence[middle]:.2f} at {d[middle]}, {v.dependence[-1]:.2f} at {d[-1]} "
                f"(shuffled: {v.null_mean:.2f})."
            )
    if v.decided_by == "model":
        out.append(
            f"A small CNN scored {model.cnn_accuracy:.1%} ({model.cv}-fold CV on {model.n_samples} samples) as is and "
            f"{model.shuffled_accuracy[name]:.1%} with the {name} shuffled"
            + (f" (within and among the {v.n_groups} groups)" if v.n_groups > 1 else "") + "; an order-blind MLP scored "
            f"{model.mlp_accuracy:.1%}."
        )
        gain = 100 * v.model_gain
        if v.ordered:
            out.append(f"The order of the {name} adds {gain:.1f} points over the best order-blind score "
                       f"({_p(v.model_p_value)}): the model test finds a grid.")
        else:
            why = "not significant" if v.model_p_value >= alpha else f"below the {100 * min_gain:g} points required"
            out.append(f"The order of the {name} adds {gain:+.1f} points over the best order-blind score "
                       f"({_p(v.model_p_value)}; {why}): the model test finds no grid.")
    return out


def _recommendation(verdicts, non_numeric, model, ask_for_labels, suitable, sequence) -> str:
    if not suitable:
        text = ("Treat this as tabular data: a CNN would read meaning into an order of columns that has none. Use a "
                "model for tables, such as sklearn.ensemble.HistGradientBoostingClassifier")
        if model is not None and model.mlp_accuracy >= model.cnn_accuracy:
            text += f" (here even an MLP scored {model.mlp_accuracy:.1%} against the CNN's {model.cnn_accuracy:.1%})"
        text += "."
        if non_numeric:
            text += " Encode the non-numeric columns first, or mark them categorical (categorical_features='from_dtype')."
        if ask_for_labels:
            text += (" If you have labels, pass them (y, or --target) to let a cross-validated CNN test whether the "
                     "order helps.")
        return text
    if len(verdicts) == 1:
        return (f"The {verdicts[0].name} are ordered: use GridCNNClassifier on the data as it is"
                + ("; each row is read as a 1 x L sequence." if sequence else "."))
    ordered = {v.name for v in verdicts if v.ordered}
    if ordered == {"rows", "columns"}:
        return "Rows and columns are both ordered: use GridCNNClassifier with square kernels (its default)."
    if ordered == {"rows"}:
        return ("Rows are ordered, columns are not: use kernels that span the full width so that none relies on the "
                "column order, such as GridCNNClassifier(kernel_size=(3, 'full')) or architecture='kim'.")
    return ("Columns are ordered, rows are not: transpose each grid (X.swapaxes(-1, -2)) so the ordered axis runs "
            "down the rows, then use kernels that span the full width, such as "
            "GridCNNClassifier(kernel_size=(3, 'full')).")
