from django.contrib import admin

from reviews.models import (
    ChangeSet,
    ChangeSetEntry,
    ChatMessage,
    ChatSession,
    Proposal,
    ReviewComment,
)

for model in (Proposal, ReviewComment, ChatSession, ChatMessage, ChangeSet, ChangeSetEntry):
    admin.site.register(model)
