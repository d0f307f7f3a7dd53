from django.apps import AppConfig


class PodkitConfig(AppConfig):
    name = "podkit"
    verbose_name = "Pod behaviour shared by both services"
