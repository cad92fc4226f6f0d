"""Routes of activities."""

from fastapi import APIRouter

router = APIRouter()
