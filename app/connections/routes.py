"""Routes of connections."""

from fastapi import APIRouter

router = APIRouter()
