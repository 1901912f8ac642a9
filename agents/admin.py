from django.contrib import admin

from agents.models import Account, Agent, AgentLogChunk, Conversation, Message

for model in (Account, Agent, AgentLogChunk, Message, Conversation):
    admin.site.register(model)
