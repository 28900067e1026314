from django.urls import path

from apps.serving.api import views

urlpatterns = [
    path("chat/completions", views.ChatCompletionsView.as_view(), name="chat-completions"),
    path("models", views.ModelListView.as_view(), name="v1-models"),
]
