"""The registry part of the demo: a real git repository grown under `VAR_DIR` (a working copy
and its bare mirror), three models of the Data Science team, their datasets and ten builds
registered through the services, as CI would, all with `registry.builders`. Running it again
changes nothing: the commits have fixed authors and dates and are not made twice, and
registrations are idempotent."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from git import Actor, Repo

from organisation.demo import DEMO_PASSWORD
from organisation.services import service_account_create
from portal.models import Scope, Team
from registry import git, model_risk, services
from registry.builders import Commit, digest, repository_grow, repository_mirrored
from registry.models import LifecycleStatus, ModelVersion, RegisteredModel, Validation

REPOSITORY_URL = "https://gitlab.example.com/data-science/credit-models"
MIRROR = "demo-repos/credit-models.git"
WORKING_COPY = "demo-repos/credit-models"
PIPELINES = f"{REPOSITORY_URL}/-/pipelines"

AUTHORS = {
    "rhea": Actor("Rhea Quinn", "rhea.quinn@bank.example"),
    "per": Actor("Per Eriksen", "per.eriksen@bank.example"),
    "mia": Actor("Mia Chen", "mia.chen@bank.example"),
}

# (author, path, subject, body)
COMMITS = [
    ("rhea", "credit_scoring/train.py", "Credit scoring: baseline logistic regression", ""),
    (
        "per",
        "credit_scoring/train.py",
        "Credit scoring: gradient boosting with monotone constraints",
        "Monotone in income and days past due, as Model Risk asked in the last validation.",
    ),
    ("mia", "fraud_detection/train.py", "Fraud detection: isolation forest on card payments", ""),
    ("rhea", "churn_forecast/train.py", "Churn forecast: survival model for retail deposits", ""),
    (
        "per",
        "credit_scoring/calibrate.py",
        "Credit scoring: recalibrate on 2026-Q3 defaults",
        "Isotonic calibration on the September snapshot; Brier score 0.071 -> 0.064.",
    ),
    ("mia", "fraud_detection/features.py", "Fraud detection: merchant category features", ""),
    ("per", "churn_forecast/features.py", "Churn forecast: add product holdings", ""),
    (
        "rhea",
        "credit_scoring/features.py",
        "Credit scoring: fix leakage in the days-past-due feature",
        "The feature was computed after the observation date. Found in peer review.",
    ),
    ("mia", "fraud_detection/threshold.py", "Fraud detection: tune threshold to 0.1% alerts", ""),
]

MODELS = [
    ("credit-scoring", "Probability of default for retail loans (IRB).", 1),
    ("fraud-detection", "Scores card payments for fraud in real time.", 1),
    ("churn-forecast", "Forecasts deposit churn for the retention team.", 3),
]

DATASETS = [
    ("loans", "2026-06", 1_184_220),
    ("loans", "2026-09", 1_231_870),
    ("loans", "2026-10", 1_240_102),
    ("card-payments", "2026-08", 48_310_554),
    ("card-payments", "2026-10", 51_002_917),
    ("deposits", "2026-07", 310_442),
]

# (model, version, commit index, pipeline, framework, datasets, env lock, metrics)
VERSIONS = [
    (
        "credit-scoring",
        "1.0.0",
        0,
        1201,
        "scikit-learn 1.7",
        ["loans@2026-06"],
        True,
        {"auc": 0.78, "gini": 0.56},
    ),
    (
        "credit-scoring",
        "1.1.0",
        1,
        1244,
        "xgboost 3.0",
        ["loans@2026-06"],
        True,
        {"auc": 0.81, "gini": 0.62},
    ),
    (
        "credit-scoring",
        "1.2.0",
        4,
        1302,
        "xgboost 3.0",
        ["loans@2026-09"],
        True,
        {"auc": 0.82, "gini": 0.64, "brier": 0.064},
    ),
    (
        "credit-scoring",
        "1.2.1",
        7,
        1350,
        "xgboost 3.0",
        ["loans@2026-10"],
        True,
        {"auc": 0.815, "gini": 0.63, "brier": 0.066},
    ),
    (
        "fraud-detection",
        "0.9.0",
        2,
        1220,
        "scikit-learn 1.7",
        ["card-payments@2026-08"],
        False,
        {"precision_at_0.1pct": 0.41},
    ),
    (
        "fraud-detection",
        "1.0.0",
        5,
        1310,
        "lightgbm 4.6",
        ["card-payments@2026-08"],
        True,
        {"precision_at_0.1pct": 0.52},
    ),
    (
        "fraud-detection",
        "1.1.0",
        8,
        1361,
        "lightgbm 4.6",
        ["card-payments@2026-10"],
        True,
        {"precision_at_0.1pct": 0.55},
    ),
    ("churn-forecast", "0.1.0", 3, 1231, "lifelines 0.30", [], False, {"c_index": 0.69}),
    (
        "churn-forecast",
        "0.2.0",
        6,
        1322,
        "lifelines 0.30",
        ["deposits@2026-07"],
        True,
        {"c_index": 0.72},
    ),
    (
        "churn-forecast",
        "0.2.1",
        6,
        1340,
        "lifelines 0.30",
        ["deposits@2026-07"],
        True,
        {"c_index": 0.72},
    ),
]


def commits() -> list[Commit]:
    """The demo's commits, four days apart from 2026-09-01."""
    start = datetime(2026, 9, 1, 9, 30, tzinfo=UTC)
    return [
        Commit(
            author=AUTHORS[author],
            message=f"{subject}\n\n{body}".strip() + "\n",
            when=start + timedelta(days=4 * index, hours=index),
            path=path,
            content=f"# {subject}\nSTEP = {index}\n",
        )
        for index, (author, path, subject, body) in enumerate(COMMITS)
    ]


def seed(stdout) -> None:
    _, shas = repository_grow(Path(settings.VAR_DIR) / WORKING_COPY, commits())
    repository = repository_mirrored(REPOSITORY_URL, MIRROR)
    mirror = git.mirror_path(repository)
    if git.open_mirror(repository) is None:
        Repo.clone_from(str(Path(settings.VAR_DIR) / WORKING_COPY), str(mirror), mirror=True)
    else:
        git.fetch_mirror(repository)

    for name, description, tier in MODELS:
        services.model_register(
            actor=None,
            name=name,
            owner_team="data-science",
            description=description,
            risk_tier=tier,
        )
    for name, version, rows in DATASETS:
        services.dataset_version_register(
            actor=None,
            name=name,
            version=version,
            uri=f"s3://bank-ml-data/{name}/{version}.parquet",
            sha256=digest(f"{name}@{version}"),
            rows=rows,
            schema_sha256=digest(f"{name} schema"),
        )
    for model, version, commit, pipeline, framework, datasets, locked, metrics in VERSIONS:
        services.model_version_register(
            actor=None,
            model=model,
            version=version,
            repository=REPOSITORY_URL,
            commit_sha=shas[commit],
            ref="main",
            build_id=str(pipeline),
            build_url=f"{PIPELINES}/{pipeline}",
            artifact_uri=f"s3://bank-ml-models/{model}/{version}/model.bin",
            artifact_sha256=digest(f"{model}:{version}:{pipeline}"),
            framework=framework,
            params={"seed": 42, "max_depth": 4 + commit % 3, "training_window_months": 24},
            metrics=metrics,
            datasets=[dict(zip(("name", "version"), d.split("@"), strict=True)) for d in datasets],
            env_lock_sha256=digest(f"uv.lock {framework}") if locked else "",
        )
    stdout.write(
        f"Registry: {len(MODELS)} models, {len(VERSIONS)} versions, git mirror at "
        f"{Path(settings.VAR_DIR) / MIRROR}."
    )
    seed_model_risk(stdout)


INVENTORY = {
    "credit-scoring": {
        "purpose": "Probability of default for retail loans, used in IRB capital and pricing.",
        "prohibited_uses": "Collections prioritisation; any use outside retail lending.",
        "business_owner": "Head of Retail Credit",
        "tier_rationale": "High materiality (capital), high reliance, moderate complexity.",
        "ai_act_high_risk": True,
        "regulatory_rationale": "Creditworthiness of natural persons (AI Act Annex III 5(b)).",
        "upstream_datasets": ["loans"],
        "lifecycle_status": LifecycleStatus.IN_PRODUCTION,
    },
    "fraud-detection": {
        "purpose": "Real-time fraud scores for card payments.",
        "prohibited_uses": "Credit decisions.",
        "business_owner": "Head of Payments Fraud",
        "tier_rationale": "High materiality (losses), full reliance in real time.",
        "upstream_datasets": ["card-payments"],
        "lifecycle_status": LifecycleStatus.IN_PRODUCTION,
    },
    "churn-forecast": {
        "purpose": "Forecasts deposit churn for the retention team.",
        "business_owner": "Head of Deposits",
        "tier_rationale": "Low materiality: informs campaigns, decides nothing alone.",
        "upstream_datasets": ["deposits"],
        "upstream_models": ["credit-scoring"],
        "lifecycle_status": LifecycleStatus.IN_PRODUCTION,
    },
}


def seed_model_risk(stdout) -> None:
    """A lived-in inventory: credit-scoring validated, its periodic review brought forward to
    three weeks from now and opened by Model Risk's workbench token; fraud-detection 1.1.0
    approved with a high finding past its date (its production change is held at the gate);
    churn-forecast validated; a retired scorecard."""
    if Validation.objects.exists():
        return
    users = {user.username: user for user in get_user_model().objects.all()}
    risk, requester = users["risk"], users["requester"]
    builds = {
        (build.model.name, build.version): build
        for build in ModelVersion.objects.select_related("model", "repository")
    }
    models = {model.name: model for model in RegisteredModel.objects.all()}
    for name, entry in INVENTORY.items():
        model_risk.model_inventory_update(
            actor=risk, model=models[name], model_risk_owner="risk", **entry
        )
    now = timezone.now()

    def validate(name, versions, outcome, scope, *, days_ago, findings=(), report=None):
        return model_risk.validation_conclude(
            actor=risk,
            model=models[name],
            versions=[builds[(name, version)] for version in versions],
            scope=scope,
            outcome=outcome,
            password=DEMO_PASSWORD,
            findings=findings,
            report=report,
            now=now - timedelta(days=days_ago),
        )

    validate(
        "credit-scoring",
        ["1.2.0", "1.2.1"],
        "approved",
        "Recalibration on 2026-Q3 defaults: discrimination, calibration, stability.",
        days_ago=12,
        report=(
            "credit-scoring-2026-q3-validation.md",
            b"# credit-scoring 1.2.0 and 1.2.1: validation report\n\n"
            b"Discrimination (Gini 0.71) and calibration (Hosmer-Lemeshow p = 0.42) hold on the "
            b"2026-Q3 defaults; the leakage fix in 1.2.1 changes no score by more than 0.3%.\n",
        ),
    )
    model_risk.model_inventory_update(
        actor=risk,
        model=models["credit-scoring"],
        next_validation_due=(now + timedelta(days=21)).date(),
    )
    # Its periodic review is under way: opened by Model Risk's workbench over the API, for Rita
    # to conclude, with a finding recorded so far.
    workbench, _ = service_account_create(
        actor=None,
        name="model-risk-workbench",
        team=Team.objects.get(slug=settings.GATEHOUSE_MODEL_RISK_TEAM),
        scopes=[Scope.VALIDATIONS_WRITE],
    )
    review = model_risk.validation_open(
        actor=workbench,
        model=models["credit-scoring"],
        versions=["1.2.1"],
        scope="Periodic review: stability of the 2026-Q4 population, overrides by branch.",
        validator="risk",
    )
    model_risk.finding_record(
        actor=workbench,
        validation=review,
        title="Override rate by branch not monitored",
        severity="medium",
        owner="requester",
        remediation_due=(now + timedelta(days=45)).date(),
    )
    validate(
        "fraud-detection",
        ["1.1.0"],
        "conditions",
        "Merchant features and the 0.1% alert threshold.",
        days_ago=40,
        findings=[
            {
                "title": "No drift monitor on merchant features",
                "severity": "high",
                "owner": requester,
                "remediation_due": (now - timedelta(days=5)).date(),
            }
        ],
    )
    validate(
        "churn-forecast",
        ["0.2.0", "0.2.1"],
        "approved",
        "Survival model for deposit churn.",
        days_ago=20,
    )
    legacy, _ = services.model_register(
        actor=None,
        name="legacy-scorecard",
        owner_team="data-science",
        description="The 2019 logistic scorecard that credit-scoring replaced.",
        risk_tier=2,
    )
    model_risk.model_inventory_update(
        actor=risk,
        model=legacy,
        purpose="Retail probability of default before credit-scoring.",
        lifecycle_status=LifecycleStatus.IN_PRODUCTION,
    )
    # Its last build, from the repository's first commit; releases' demo retires it by change.
    services.model_version_register(
        actor=None,
        model="legacy-scorecard",
        version="0.9.0",
        repository=REPOSITORY_URL,
        commit_sha=builds[("credit-scoring", "1.0.0")].commit_sha,
        build_id="legacy-2019",
        artifact_uri="s3://bank-ml-models/legacy-scorecard/0.9.0/model.bin",
        artifact_sha256=digest("legacy-scorecard:0.9.0"),
    )
    stdout.write(
        "Model risk: 3 validations (fraud-detection has a high finding past due), "
        "credit-scoring's review due in three weeks and open for Rita to conclude, "
        "legacy-scorecard to be retired by change."
    )
