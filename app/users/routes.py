"""Routes of users."""

from fastapi import APIRouter

router = APIRouter()
