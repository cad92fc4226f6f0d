"""Routes of quotas."""

from fastapi import APIRouter

router = APIRouter()
