"""Routes of contacts."""

from fastapi import APIRouter

router = APIRouter()
