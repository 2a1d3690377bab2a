"""Operations: service status, Schwab token and re-authentication, universe, kill switch."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
