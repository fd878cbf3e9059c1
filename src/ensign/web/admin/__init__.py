"""The JSON admin API under /api/v1/, authenticated with `Authorization: Api-Key <key>`."""

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1")
