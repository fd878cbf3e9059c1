"""OpenFeature Remote Evaluation (OFREP v0.3.0): a context evaluated without storing anything.

`context.targetingKey` is the identifier and every other context key a trait, for this
evaluation only. An identified evaluation is recorded for the integrations inside its
transaction, as a transient identify is, so OFREP users get Heap and Mixpanel too; an
evaluation without a targeting key serves the environment defaults, and a flag whose rules
need an identity answers `TargetingKeyMissing`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ensign.engine import ReasonKind
from ensign.errors import InvalidInput, NotFound, TargetingKeyMissing, UnparsableInput
from ensign.services import identify, identities
from ensign.services.flags import (
    ExperimentOutcome,
    IdentifyResult,
    ServedFlag,
    environment_flags,
    evaluate,
)
from ensign.services.identities import PreparedIdentity
from ensign.services.sdk_requests import Limits, TraitInput, check_identifier, parse_trait_key
from ensign.services.snapshots import Snapshot
from ensign.services.values import trait_value_from_json
from ensign.storage.models import utcnow

TARGETING_KEY = "targetingKey"


@dataclass(frozen=True)
class ContextRequest:
    """An OFREP call: whose flags (None without a targeting key), with which traits."""

    targeting_key: str | None
    traits: tuple[TraitInput, ...]
    is_server: bool


@dataclass(frozen=True)
class Resolution:
    """One flag as OFREP answers it."""

    key: str
    value: Any
    reason: str
    variant: str
    feature_id: int
    # The flag's running experiment, and whether this context is in it.
    experiment: ExperimentOutcome | None = None


@dataclass(frozen=True)
class Unresolved:
    """A flag of a bulk answer that cannot be evaluated without a targeting key."""

    key: str
    detail: str


def parse_request(body: Any, limits: Limits, *, is_server: bool) -> ContextRequest:
    """The decoded JSON body of either OFREP call; `context` may be left out (the PyPI
    provider sends `{}` when the caller gives no context)."""
    if not isinstance(body, dict):
        raise UnparsableInput("The request body must be a JSON object.")
    context = body.get("context")
    if context is None:
        return ContextRequest(None, (), is_server)
    if not isinstance(context, dict):
        raise InvalidInput("context: must be an object.")
    targeting_key = context.get(TARGETING_KEY)
    if targeting_key == "":
        targeting_key = None
    if targeting_key is not None:
        if not isinstance(targeting_key, str):
            raise InvalidInput("context.targetingKey: must be a string.")
        try:
            check_identifier(targeting_key, limits)
        except InvalidInput as error:
            detail = error.detail.replace("identifier", "context.targetingKey", 1)
            raise InvalidInput(detail) from None
    traits = []
    for key, value in context.items():
        if key == TARGETING_KEY or value is None:
            continue
        try:
            key = parse_trait_key(key, limits)
            traits.append(
                TraitInput(key, trait_value_from_json(value, max_length=limits.trait_value_length))
            )
        except InvalidInput as error:
            raise InvalidInput(f"context.{key}: {error.detail}") from None
    if len(traits) > limits.traits_per_request:
        raise InvalidInput(
            f"context: at most {limits.traits_per_request} attributes besides targetingKey."
        )
    return ContextRequest(targeting_key, tuple(traits), is_server)


def _never(_: IdentifyResult) -> bool:
    return False


def evaluate_context(
    units: identify.IdentifyUnits,
    snapshot: Snapshot,
    request: ContextRequest,
    *,
    feature: str | None,
    already_served: Callable[[IdentifyResult], bool] = _never,
) -> IdentifyResult:
    """The context's flags (only `feature`'s when given; NotFound when it is not served).

    With a targeting key: the stored identity's traits and overrides with the context's
    traits laid over them, nothing stored, and what is served recorded for the integrations
    (a transient identify) unless `already_served` says the caller holds this very answer.
    Without one: the environment defaults, nothing recorded."""
    if request.targeting_key is None:
        served = environment_flags(snapshot, is_server=request.is_server)
        result = IdentifyResult("", None, served, [])
        return result if feature is None else result.only(feature)
    identifier = request.targeting_key
    traits = request.traits
    if not request.is_server and not snapshot.allow_client_traits:
        traits = ()  # as identify does with a client key's traits
    records = identify.records_anything(snapshot)
    with units.unit(write=records) as store:
        stored = store.load_identity(snapshot.environment_id, identifier)
        prepared = PreparedIdentity(
            identifier,
            None if stored is None else stored.id,
            identities.overlay_traits(identities.stored_traits(stored), traits),
        )
        result = evaluate(snapshot, prepared, is_server=request.is_server)
        if feature is not None:
            result = result.only(feature)
        if records and not already_served(result):
            identify.record_evaluation(store, snapshot, result, utcnow())
    return result


def needs_targeting_key(snapshot: Snapshot, flag: ServedFlag) -> bool:
    """Whether an identity could be served something else: a segment or identity override
    exists, or the flag splits identities between variants."""
    return (
        flag.name in snapshot.targeted_features
        or snapshot.features[flag.name].type == "MULTIVARIATE"
    )


def _missing_targeting_key(
    snapshot: Snapshot, request: ContextRequest, flag: ServedFlag
) -> str | None:
    if request.targeting_key is None and needs_targeting_key(snapshot, flag):
        return f"Flag '{flag.name}' has targeting rules: send context.targetingKey."
    return None


def resolve(
    snapshot: Snapshot, flag: ServedFlag, experiment: ExperimentOutcome | None = None
) -> Resolution:
    """A served flag as OFREP's value, reason and variant.

    The value is the flag's value when enabled and set, otherwise whether it is enabled. A
    string holding a JSON object or array is served as that object, so that `get_object_value`
    works on flags Flagsmith can only store as text."""
    value: Any = flag.enabled
    if flag.enabled and flag.value is not None:
        value = _object_or_text(flag.value)
    reason = _ofrep_reason(flag.kind) if flag.enabled else "DISABLED"
    variant = flag.variant or ("on" if flag.enabled else "off")
    feature_id = snapshot.features[flag.name].id
    return Resolution(flag.name, value, reason, variant, feature_id, experiment)


def _ofrep_reason(kind: ReasonKind) -> str:
    """The reason's OpenFeature part ("TARGETING_MATCH; segment=x" is TARGETING_MATCH), within
    OFREP's enum: Flagsmith's DEFAULT (the environment default of a feature some segment
    targets) is STATIC there, as the Flagsmith OpenFeature provider reports it; OpenFeature
    keeps DEFAULT for the caller's code default."""
    return ReasonKind.STATIC.value if kind is ReasonKind.DEFAULT else kind.value


def _object_or_text(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if isinstance(decoded, dict | list):
            return decoded
    return value


@dataclass(frozen=True)
class BulkAnswer:
    """The bulk answer's ETag, and its flags (None: the caller already holds them)."""

    etag: str
    resolutions: list[Resolution | Unresolved] | None


def bulk_answer(
    units: identify.IdentifyUnits,
    snapshot: Snapshot,
    request: ContextRequest,
    *,
    held: Callable[[str], bool],
) -> BulkAnswer:
    """`POST /ofrep/v1/evaluate/flags`: every flag, tagged with a digest of the answer itself,
    so that whatever changes it (the environment, the context, or the identity's stored traits
    changed through the SDK API) changes the tag. `held` says whether the caller holds the
    answer with a tag (`If-None-Match`); a held answer is neither sent nor recorded again."""

    def already_served(result: IdentifyResult) -> bool:
        return held(answer_etag(snapshot, bulk_resolutions(snapshot, request, result)))

    result = evaluate_context(units, snapshot, request, feature=None, already_served=already_served)
    resolutions = bulk_resolutions(snapshot, request, result)
    etag = answer_etag(snapshot, resolutions)
    return BulkAnswer(etag, None if held(etag) else resolutions)


def answer_etag(snapshot: Snapshot, resolutions: list[Resolution | Unresolved]) -> str:
    """A digest of everything the bulk answer holds: its flags, its version and event stream
    (the environment's revision and key). The environment's last change is in it too, so
    that any change to the environment answers in full once."""
    items: list[Any] = []
    for item in resolutions:
        if isinstance(item, Unresolved):
            items.append([item.key, item.detail])
            continue
        outcome = item.experiment
        experiment = (
            None
            if outcome is None
            else [outcome.experiment.id, outcome.experiment.name, outcome.in_experiment]
        )
        items.append([item.key, item.value, item.reason, item.variant, item.feature_id, experiment])
    answer = [
        snapshot.environment_id,
        snapshot.api_key,
        snapshot.revision,
        snapshot.updated_at.isoformat(),
        items,
    ]
    return f'"{hashlib.sha256(orjson.dumps(answer)).hexdigest()[:32]}"'


def bulk_resolutions(
    snapshot: Snapshot, request: ContextRequest, result: IdentifyResult
) -> list[Resolution | Unresolved]:
    """Every served flag, or why it cannot be evaluated without a targeting key."""
    resolutions: list[Resolution | Unresolved] = []
    for flag in result.served:
        missing = _missing_targeting_key(snapshot, request, flag)
        resolutions.append(
            resolve(snapshot, flag, result.experiments.get(flag.name))
            if missing is None
            else Unresolved(flag.name, missing)
        )
    return resolutions


def single_resolution(
    units: identify.IdentifyUnits, snapshot: Snapshot, request: ContextRequest, key: str
) -> Resolution:
    """`POST /ofrep/v1/evaluate/flags/{key}`: NotFound, TargetingKeyMissing or the flag."""
    try:
        result = evaluate_context(units, snapshot, request, feature=key)
    except NotFound:
        raise NotFound(f"Flag '{key}' was not found.") from None
    flag = result.served[0]
    missing = _missing_targeting_key(snapshot, request, flag)
    if missing is not None:
        raise TargetingKeyMissing(missing)
    return resolve(snapshot, flag, result.experiments.get(key))
