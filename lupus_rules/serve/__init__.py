"""CDS Hooks 2.0 out: ``lupus-rules serve`` (Starlette + uvicorn) turns FHIR prefetch into cards.

Not for clinical use. Services: ``lupus-alternatives`` (patient-view) and
``lupus-order-check`` (order-select); see :mod:`lupus_rules.serve.app`.
"""
from __future__ import annotations

from .app import MAX_BODY_BYTES, HookError, create_app
from .cards import OVERRIDE_REASONS, SUMMARY_MAX, order_cards, patient_cards
from .services import PREFETCH_KEYS, Service, discovery, services

__all__ = ["create_app", "HookError", "MAX_BODY_BYTES", "OVERRIDE_REASONS", "SUMMARY_MAX", "order_cards",
           "patient_cards", "PREFETCH_KEYS", "Service", "discovery", "services"]
