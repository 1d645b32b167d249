"""Hand-written operation responses, one per type, each valid against the spec (a test checks).

They are the fixed inputs of the pure flattening tests; the simulator's fleet
covers the same ground over real HTTP.
"""

from __future__ import annotations

import copy

T0 = 1_764_000_000  # 2025-11-24T16:00:00Z

YQL = {
    "id": "0a0000000000000000000000000000a1",
    "type": "yql",
    "params": {"query": "SELECT user_id, COUNT(*) AS n FROM {src_0} GROUP BY user_id"},
    "src": [
        {"id": "d5000000000000000000000000000001", "version": "e7000000000000000000000000000001", "mapping": None},
        {"id": "d5000000000000000000000000000002", "version": None, "mapping": None},
    ],
    "dst": [{"id": "d5000000000000000000000000000003", "version": "e7000000000000000000000000000003"}],
    "status": "succeeded",
    "created_at": T0,
    "in_progress_at": T0 + 30,
    "finished_at": T0 + 150,
    "ai_project_id": "proj-analytics",
}

MATERIALIZE = {
    "id": "0a0000000000000000000000000000a2",
    "type": "materialize_history",
    "params": {
        "start_datetime": "2025-11-01T12:00:00+02:00",
        "end_datetime": "2025-11-20T15:30:00Z",
        "dataset_name": "chat_history_november",
        "model_name": None,
    },
    "src": [],
    "dst": [{"id": "d5000000000000000000000000000004", "version": "e7000000000000000000000000000004"}],
    "status": "failed",
    "created_at": T0 + 10,
    "in_progress_at": T0 + 70,
    "finished_at": T0 + 400,
    "ai_project_id": None,
}

BATCH = {
    "id": "0a0000000000000000000000000000a3",
    "type": "batch_inference",
    "params": {"model": "meta-llama/Meta-Llama-3.1-70B-Instruct", "completion_window": "24h"},
    "src": [
        {
            "id": "d5000000000000000000000000000005",
            "version": "e7000000000000000000000000000005",
            "mapping": {
                "type": "text_messages",
                "messages": {"type": "column", "name": "chat_messages"},
                "max_tokens": {"type": "text", "value": "512"},
                "custom_id": {"type": "column", "name": "row_id"},
            },
        }
    ],
    "dst": [{"id": "d5000000000000000000000000000006", "version": None}],
    "status": "running",
    "created_at": T0 + 20,
    "in_progress_at": T0 + 25,
    "finished_at": None,
    "ai_project_id": "proj-analytics",
}

FINETUNING = {
    "id": "0a0000000000000000000000000000a4",
    "type": "finetuning",
    "params": {
        "model_name": "meta-llama/Llama-3.1-8B",
        "hyperparameters": None,
        "method": {
            "type": "supervised",
            "supervised": {
                "hyperparameters": {
                    "batch_size": 16,
                    "learning_rate": 2e-05,
                    "n_epochs": 3,
                    "warmup_ratio": 0.05,
                    "weight_decay": 0.01,
                    "packing": True,
                    "max_grad_norm": 1.0,
                    "context_length": 8192,
                    "lora": True,
                    "lora_r": 16,
                    "lora_alpha": 32,
                    "lora_dropout": 0.05,
                }
            },
        },
        "from_checkpoint": {"type": "hf", "repo": "acme/llama-base", "revision": "main", "token": "hf_SECRETtoken123"},
        "integrations": [
            {"type": "wandb", "wandb": {"project": "ft-runs", "name": "run-7", "entity": "acme", "tags": ["a", "b"], "api_key": "wandb-SECRET-key"}},
            {
                "type": "mlflow",
                "mlflow": {
                    "tracking_uri": "https://mlflow.example.com",
                    "experiment_name": "ft",
                    "run_name": "run-7",
                    "tags": {"team": "nlp"},
                    "certificate_file": "ca.pem",
                    "username": "bot",
                    "password": "mlflow-SECRET-pass",
                },
            },
            {"type": "hf", "hf": {"output_repo_name": "acme/llama-ft", "api_token": "hf_SECRETexport"}},
        ],
        "seed": 42,
        "suffix": "support-bot",
        "tags": ["support", "v2"],
        "trained_steps": 120,
        "total_steps": 480,
        "trained_tokens": None,
        "estimated_finish": T0 + 5000,
    },
    "src": [
        {
            "id": "d5000000000000000000000000000007",
            "version": "e7000000000000000000000000000007",
            "mapping": {"type": "messages", "messages": {"type": "column", "name": "messages"}},
            "type": "train",
        },
        {
            "id": "d5000000000000000000000000000008",
            "version": "e7000000000000000000000000000008",
            "mapping": {
                "type": "prompts",
                "prompt": {"type": "column", "name": "prompt"},
                "completion": {"type": "column", "name": "completion"},
            },
            "type": "validation",
        },
    ],
    "dst": [],
    "status": "running",
    "created_at": T0 + 30,
    "in_progress_at": T0 + 600,
    "finished_at": None,
    "ai_project_id": "proj-ml",
}

FILE_TO_DATASET = {
    "id": "0a0000000000000000000000000000a5",
    "type": "file_to_dataset",
    "params": {"file_id": "file-01954e35-a0a1-72fb-b84d-caf95f8f3a0f", "dataset_name": "uploads"},
    "src": [],
    "dst": [{"id": "d5000000000000000000000000000009", "version": "e7000000000000000000000000000009"}],
    "status": "queued",
    "created_at": T0 + 40,
    "in_progress_at": None,
    "finished_at": None,
    "ai_project_id": None,
}

DATASET_TO_FILE = {
    "id": "0a0000000000000000000000000000a6",
    "type": "dataset_to_file",
    "params": {"purpose": "inference", "model": "openai/gpt-oss-120b"},
    "src": [
        {
            "dataset": {"id": "d5000000000000000000000000000010", "version": "e7000000000000000000000000000010"},
            "mapping": {
                "type": "text_messages",
                "messages": {"type": "column", "name": "messages"},
                "max_tokens": {"type": "column", "name": "max_tokens"},
                "custom_id": None,
            },
        }
    ],
    "dst": [],
    "status": "cancelled",
    "created_at": T0 + 50,
    "in_progress_at": None,
    "finished_at": T0 + 90,
    "ai_project_id": "proj-ml",
}

ALL = [YQL, MATERIALIZE, BATCH, FINETUNING, FILE_TO_DATASET, DATASET_TO_FILE]
#: Every secret value planted above; none may survive into any output.
SECRETS = ["hf_SECRETtoken123", "wandb-SECRET-key", "mlflow-SECRET-pass", "hf_SECRETexport"]


def all_samples() -> list[dict]:
    """Fresh deep copies, so a test may change them."""
    return copy.deepcopy(ALL)
