from django.urls import path

from apps.evaluations.api import views

urlpatterns = [
    path("tunix/runs/<str:run_id>/evaluate", views.RunEvaluateView.as_view(), name="run-evaluate"),
    path("tunix/runs/<str:run_id>/evaluation", views.RunEvaluationView.as_view(), name="run-evaluation"),
    path("tunix/evaluations", views.LeaderboardView.as_view(), name="leaderboard"),
    path("evaluations/<str:evaluation_id>", views.EvaluationDetailView.as_view(), name="evaluation-detail"),
    path("evaluations/<str:evaluation_id>/cancel", views.EvaluationCancelView.as_view(), name="evaluation-cancel"),
    path("evaluations/<str:evaluation_id>/predictions", views.PredictionListView.as_view(),
         name="evaluation-predictions"),
    path("regression/baselines", views.BaselineListCreateView.as_view(), name="regression-baselines"),
    path("regression/check", views.RegressionCheckView.as_view(), name="regression-check"),
]
